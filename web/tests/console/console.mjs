// The operator console in a real browser: Debian's Chromium, headless, driven by playwright-core.
// scripts/console-test starts the stack (web, worker, scheduler, an SMTP server that refuses mail)
// and runs this with:
//
//   CONSOLE_TEST_MODULES  the node_modules folder holding playwright-core
//   BASE_URL              the web server, e.g. http://127.0.0.1:40123
//   CHROMIUM              the browser binary (/usr/bin/chromium)
//   PROFILE_DIR           a fresh, empty folder for the browser's profile
//   STATE_DIR             the SMTP server's folder: removing STATE_DIR/refuse makes it accept mail
//   SHOTS_DIR             where the screenshots go (docs/)
//   ADMIN_USER, USER_USER, PASSWORD, XSS_TITLE
//   BUY_NOW_AUCTION, BUYER_TOKEN  an auction with a buy-now price, and a bidder who can afford it
//
// It signs in as a non-operator (refused with a message), then as an operator; sees the dead email
// job; lets the SMTP server accept mail again and retries the job from the page; sees it leave the
// dead set and the email arrive; buys an auction (over the API) and sees it settle, with its lag,
// and the finished jobs counted; runs the ledger audit from its button. Auction titles and dead
// jobs' errors are shown as text: a title made of markup must not become markup. Any error in the
// page (a script error, a Content-Security-Policy violation) fails the run.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const require = createRequire(path.join(env("CONSOLE_TEST_MODULES"), "index.js"));
const { chromium } = require("playwright-core");

const BASE = env("BASE_URL");
const STATE_DIR = env("STATE_DIR");
const SHOTS_DIR = env("SHOTS_DIR");
const PASSWORD = env("PASSWORD");
const XSS_TITLE = env("XSS_TITLE");
const WAIT = { timeout: 90_000 };

const log = (message) => console.error(`[console-test] ${message}`);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function waitForFile(file, what) {
  const deadline = Date.now() + WAIT.timeout;
  while (!fs.existsSync(file) || fs.readFileSync(file, "utf8").trim() === "") {
    if (Date.now() > deadline) throw new Error(`${what} never happened`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return fs.readFileSync(file, "utf8");
}

const context = await chromium.launchPersistentContext(env("PROFILE_DIR"), {
  executablePath: env("CHROMIUM"),
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
});
const pageErrors = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => pageErrors.push(`page error: ${err.message}`));
  // Failed requests are checked by their responses (below); Chromium also logs each one.
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      pageErrors.push(`console error: ${msg.text()}`);
    }
  });
  page.on("response", (resp) => {
    // Before the first audit, GET /admin/audit/last is a documented 404.
    const expected = resp.status() === 404 && resp.url().endsWith("/api/v1/admin/audit/last");
    if (resp.status() >= 400 && !expected) pageErrors.push(`${resp.request().method()} ${resp.url()}: ${resp.status()}`);
  });

  log("the page asks for a sign-in");
  const response = await page.goto(`${BASE}/ops`);
  check(response.status() === 200, `GET /ops answered ${response.status()}`);
  check((response.headers()["content-security-policy"] ?? "").includes("script-src 'self'"), "the page has a strict CSP");
  await page.locator("#sign-in-panel").waitFor({ state: "visible", ...WAIT });

  log("a user who is not an operator is told so, and keeps no token");
  await page.fill("#sign-in input[name=username]", env("USER_USER"));
  await page.fill("#sign-in input[name=password]", PASSWORD);
  await page.click("#sign-in button[type=submit]");
  await page.locator("#sign-in-error", { hasText: "not an operator" }).waitFor(WAIT);
  check((await page.evaluate(() => sessionStorage.length)) === 0, "no token kept for a non-operator");
  check(await page.locator("#console").isHidden(), "the console stays hidden");

  log("the operator signs in");
  await page.fill("#sign-in input[name=username]", env("ADMIN_USER"));
  await page.fill("#sign-in input[name=password]", PASSWORD);
  await page.click("#sign-in button[type=submit]");
  await page.locator("#console").waitFor({ state: "visible", ...WAIT });
  check(!page.url().includes("token") && !page.url().includes("password"), `nothing secret in the URL: ${page.url()}`);

  log("the dead email job shows up, with the server's refusal");
  const deadRows = page.locator('#dead-jobs tr[data-queue="email"][data-job-id^="send_email:"]');
  await deadRows.first().waitFor(WAIT);
  check((await deadRows.count()) === 1, "one dead email job");
  const jobId = await deadRows.first().getAttribute("data-job-id");
  check((await deadRows.first().innerText()).includes("550"), "the dead job shows the 550 refusal");
  await page.locator('#queues tr[data-queue="email"] td.bad', { hasText: "1" }).waitFor(WAIT);
  await page.locator("#workers td", { hasText: "yes" }).first().waitFor(WAIT);

  log("an auction title made of markup is shown as text");
  await page.locator("#closing-soon td", { hasText: XSS_TITLE }).waitFor(WAIT);
  check((await page.locator("img").count()) === 0, "no element was made from the title");
  check((await page.evaluate(() => window.__xss)) === undefined, "no script ran from the title");

  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS_DIR, "ops-console-dead-job.png"), fullPage: true });

  log(`the mail server accepts mail again; retry ${jobId} from the page`);
  fs.rmSync(path.join(STATE_DIR, "refuse"));
  await deadRows.first().getByRole("button", { name: "Retry" }).click();
  await page.locator(`#dead-jobs tr[data-job-id="${jobId}"]`).waitFor({ state: "detached", ...WAIT });
  await page.locator("#dead-empty").waitFor({ state: "visible", ...WAIT });
  const accepted = await waitForFile(path.join(STATE_DIR, "accepted"), "the retried email's delivery");
  log(`delivered to ${accepted.trim()}`);

  log("a bought auction shows up settled, with its settlement lag");
  const bought = await fetch(`${BASE}/api/v1/auctions/${env("BUY_NOW_AUCTION")}/buy-now`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("BUYER_TOKEN")}` },
  });
  check(bought.status === 200, `buy-now answered ${bought.status}`);
  const settled = page.locator("#recently-closed tr", { hasText: "settled" });
  await settled.waitFor(WAIT);
  check(/\d s|min|h$/.test((await settled.locator("td").nth(4).innerText()).trim()), "a settlement lag is shown");

  log("finished jobs are counted: the release, the retried email and the settlement's");
  const finished = (queue) => page.locator(`#queues tr[data-queue="${queue}"] td`).nth(7);
  for (const queue of ["release", "email", "settlement"]) {
    await page.waitForFunction(
      (q) => Number(document.querySelector(`#queues tr[data-queue="${q}"] td:nth-child(8)`)?.textContent) >= 1,
      queue,
      WAIT,
    );
  }
  check((await finished("email").innerText()).trim() !== "0", "the email's retry is counted");
  check((await page.locator('#queues tr[data-queue="email"] td').nth(4).innerText()).trim() === "0", "no dead email job left");

  log("the ledger audit runs from its button");
  await page.click("#run-audit");
  await page.locator("#audit-summary.good", { hasText: "Clean" }).waitFor(WAIT);
  await page.screenshot({ path: path.join(SHOTS_DIR, "ops-console-after-retry.png"), fullPage: true });

  check(pageErrors.length === 0, `errors in the page:\n${pageErrors.join("\n")}`);
  log("passed");
} finally {
  await context.close();
}
