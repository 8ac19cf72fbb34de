//! Bounds on open WebSockets, in all and per client address, so one client cannot take every
//! socket (and the memory behind them) of a web process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open WebSockets of this process.
pub struct ConnectionCaps {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a WebSocket was refused before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client address holds its maximum already.
    PerIp,
    /// The process serves its maximum already.
    Total,
}

/// One open WebSocket's place; freed when dropped.
pub struct Slot {
    caps: Arc<ConnectionCaps>,
    ip: IpAddr,
}

impl ConnectionCaps {
    /// At most `max_total` sockets, `max_per_ip` of them from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self { max_total, max_per_ip, open: Mutex::default() }
    }

    /// Takes a place for a socket from `ip`, or says which bound is reached.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let mut open = self.open.lock().expect("caps lock");
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        let of_ip = open.by_ip.entry(ip).or_default();
        if *of_ip >= self.max_per_ip {
            return Err(Refused::PerIp);
        }
        *of_ip += 1;
        open.total += 1;
        Ok(Slot { caps: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().expect("caps lock");
        open.total -= 1;
        if let Some(of_ip) = open.by_ip.get_mut(&self.ip) {
            *of_ip -= 1;
            if *of_ip == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_address_and_in_all_and_freed_on_drop() {
        let caps = Arc::new(ConnectionCaps::new(3, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = caps.open(a).unwrap();
        let _second = caps.open(a).unwrap();
        assert_eq!(caps.open(a).err(), Some(Refused::PerIp));
        let _third = caps.open(b).unwrap();
        assert_eq!(caps.open(b).err(), Some(Refused::Total));
        drop(first);
        assert!(caps.open(a).is_ok());
    }
}
