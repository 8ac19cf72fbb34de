"""A small SMTP server for the console's browser test (Python standard library only).

    python3 smtp_sink.py PORT_FILE STATE_DIR

It listens on 127.0.0.1 and a free port, written to PORT_FILE once listening. While the file
STATE_DIR/refuse exists every RCPT TO gets "550 5.1.1 mailbox unavailable", a permanent failure
that sends the worker's email job to the dead set; once it is gone, mail is accepted and each
message's recipients are appended to STATE_DIR/accepted, one line per message.

It speaks what lettre's client sends: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""

import asyncio
import os
import sys


async def session(reader, writer, state_dir):
    recipients = []

    async def reply(line):
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    await reply("220 localhost ESMTP console-test")
    while True:
        raw = await reader.readline()
        if not raw:
            break
        command = raw.decode("utf-8", "replace").strip()
        upper = command.upper()
        if upper.startswith("EHLO"):
            await reply("250-localhost")
            await reply("250 8BITMIME")
        elif upper.startswith(("HELO", "NOOP")):
            await reply("250 OK")
        elif upper.startswith("MAIL FROM:"):
            recipients = []
            await reply("250 OK")
        elif upper.startswith("RCPT TO:"):
            if os.path.exists(os.path.join(state_dir, "refuse")):
                await reply("550 5.1.1 mailbox unavailable")
            else:
                recipients.append(command[8:].strip())
                await reply("250 OK")
        elif upper.startswith("RSET"):
            recipients = []
            await reply("250 OK")
        elif upper.startswith("DATA"):
            if not recipients:
                await reply("554 5.5.1 no valid recipients")
                continue
            await reply("354 End data with <CR><LF>.<CR><LF>")
            while True:
                line = await reader.readline()
                if not line or line.rstrip(b"\r\n") == b".":
                    break
            with open(os.path.join(state_dir, "accepted"), "a", encoding="utf-8") as accepted:
                accepted.write(" ".join(recipients) + "\n")
            await reply("250 OK queued")
        elif upper.startswith("QUIT"):
            await reply("221 Bye")
            break
        else:
            await reply("502 Command not implemented")
    writer.close()


async def main(port_file, state_dir):
    server = await asyncio.start_server(lambda r, w: session(r, w, state_dir), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w", encoding="utf-8") as out:
        out.write(f"{port}\n")
    os.replace(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
