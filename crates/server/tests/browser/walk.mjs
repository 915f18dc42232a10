// The curator's walk through the portal in a real browser: Debian's chromium driven by
// playwright-core (never a downloaded browser), headless. Run by tests/portal_browser.rs,
// which starts the server, prepares the tenant and then installs with the real Claude Code.
//
// Environment: ROOT (the tenant root <T>), TENANT, ADMIN_USER, MEMBER_USER, PASSWORD,
// MIRROR_SLUG (a mirror whose last pull failed), SCREENSHOTS (a folder), RESULT (a JSON file
// this script writes), CHROMIUM (default /usr/bin/chromium), PLAYWRIGHT_MODULES (the
// node_modules folder holding playwright-core; default: next to this script).
// Any failed check throws: the process exits non-zero and the Rust test fails with its output.

import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.PLAYWRIGHT_MODULES || join(here, "node_modules");
const require = createRequire(join(modules, "resolve-from-here.js"));
const { chromium } = require("playwright-core");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const ROOT = env("ROOT");
const TENANT = env("TENANT");
const PASSWORD = env("PASSWORD");
const SHOTS = env("SCREENSHOTS");
const MIRROR = env("MIRROR_SLUG");
mkdirSync(SHOTS, { recursive: true });

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const log = (...a) => console.log("[walk]", ...a);
const result = { preview: [], clipboard: {}, screenshots: [] };

async function shot(page, name) {
  for (const [label, size] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(size);
    const file = join(SHOTS, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
  }
  await page.setViewportSize(DESKTOP);
}

async function signIn(page, user) {
  await page.goto(`${ROOT}/portal/login`);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await Promise.all([page.waitForURL(/\/portal\/plugins/), page.getByRole("button", { name: "Sign in", exact: true }).click()]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const origin = new URL(ROOT).origin;
  const admin = await browser.newContext({ viewport: DESKTOP });
  await admin.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await admin.newPage();
  const consoleErrors = [];
  // Script errors and CSP violations; not the refusals this walk asks for on purpose (the
  // CSRF-less post's 403) or the browser's own favicon probe.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // Sign in; the sign-in page itself.
  await page.goto(`${ROOT}/portal/login`);
  await shot(page, "login");
  await signIn(page, env("ADMIN_USER"));
  log("signed in as admin");

  // Admin → Plugins: the mirror whose last pull failed carries the warning chip.
  const chip = page.locator(`#row-${MIRROR} .mirror-failed`);
  await chip.waitFor();
  assert.match(await chip.innerText(), /last pull failed/);
  await shot(page, "plugins");
  await page.goto(`${ROOT}/portal/plugins/${MIRROR}`);
  await page.locator("#mirror .mirror-failed").waitFor();
  assert.equal(await page.getByRole("button", { name: "Refresh now" }).count(), 1);
  await shot(page, "mirror-detail");
  log("mirror chip shown");

  // + New plugin: the slug is checked as typed.
  await page.goto(`${ROOT}/portal/plugins`);
  await page.getByRole("link", { name: "+ New plugin" }).click();
  await page.waitForURL(/\/portal\/plugins\/new$/);
  const slug = page.locator("#slug");
  await slug.pressSequentially("Team_Tools");
  assert.equal(await slug.getAttribute("aria-invalid"), "true", "a slug that is not kebab-case is flagged as typed");
  await slug.fill("");
  await slug.pressSequentially("team-tools");
  assert.equal(await slug.getAttribute("aria-invalid"), "false");
  await page.getByLabel("Display name").fill("Team tools");
  await page.locator("#version").fill("1.0.0");
  await page.getByLabel("Description", { exact: true }).fill("Review skill, a helper agent and a formatting hook");
  await page.getByLabel("Author").fill("Platform team");
  await page.getByLabel("Category").fill("quality");
  await page.getByLabel("Keywords").fill("teamwork, review");
  // The pieces: search, tick, pick a version.
  const filter = page.getByPlaceholder("Filter skills, agents, commands");
  await filter.fill("review");
  assert.equal(await page.locator(".piece-row:visible").count(), 1, "the filter narrows the pieces");
  await page.locator('input[name="piece"][value="skill:review"]').check();
  await page.locator('select[name="v:skill:review"]').selectOption("1.0.0");
  await filter.fill("");
  await page.locator('input[name="piece"][value="agent:helper"]').check();
  // Validated as typed: a hook event Claude Code does not know is refused beside the field…
  await page.locator("#hooks").fill(JSON.stringify({ hooks: { OnSave: [] } }));
  const hookError = page.locator('[data-live-error="hooks"]');
  await hookError.waitFor({ state: "visible" });
  assert.match(await hookError.innerText(), /OnSave/);
  // …and a good one makes the live preview show the hook file.
  await page.locator("#hooks").fill(JSON.stringify({
    hooks: { PostToolUse: [{ matcher: "Edit|Write", hooks: [{ type: "command", command: "echo formatted" }] }] },
  }, null, 2));
  await hookError.waitFor({ state: "hidden" });
  await page.locator("#preview-files code", { hasText: "hooks/hooks.json" }).waitFor();
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/portal/plugins/new")),
    page.getByRole("button", { name: "Check and preview" }).click(),
  ]);
  await page.waitForLoadState();
  await page.locator("#preview").waitFor();
  result.preview = await page.locator("#preview li code").allInnerTexts();
  log("preview", result.preview);
  assert.ok(result.preview.includes("hooks/hooks.json"), "the preview shows the hook file");
  assert.ok(result.preview.includes("skills/review/SKILL.md"), "the preview shows the skill");
  await shot(page, "composer");
  await Promise.all([page.waitForURL(/\/portal\/plugins\/team-tools\?published=1\.0\.0/), page.getByRole("button", { name: "Publish" }).click()]);
  await shot(page, "plugin-detail");
  log("published team-tools 1.0.0");

  // A form post without the CSRF token is refused, from inside the signed-in browser.
  const status = await page.evaluate(async (url) => {
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "name=x&role=admin" });
    return [r.status, r.headers.get("content-type")];
  }, `${ROOT}/portal/tokens`);
  assert.equal(status[0], 403, "a token form without its CSRF token");
  assert.match(status[1], /text\/html/);

  // Tokens page: a new token is shown once with a copy button.
  await page.goto(`${ROOT}/portal/tokens`);
  await page.getByLabel("Name").fill("laptop");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.locator("#new-token").innerText();
  assert.match(secret, /^sp_/);
  await page.locator(".notice button.copy").click();
  await page.locator(".notice button.copy", { hasText: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot(page, "tokens");
  await page.goto(`${ROOT}/portal/audit`);
  await shot(page, "audit");

  // The public marketplace: search by keyword, copy both commands.
  const visitor = await browser.newContext({ viewport: DESKTOP });
  await visitor.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const pub = await visitor.newPage();
  pub.on("pageerror", (e) => consoleErrors.push(String(e)));
  await pub.goto(`${ROOT}/marketplace`);
  assert.ok(await pub.locator(".plugin-card").count() >= 2, "more than one plugin to search among");
  await shot(pub, "marketplace");
  await pub.locator("#filter").fill("teamwork");
  await pub.locator("#plugin-team-tools").waitFor({ state: "visible" });
  assert.equal(await pub.locator(".plugin-card:visible").count(), 1, "the keyword finds exactly the plugin");
  await pub.goto(`${ROOT}/marketplace?q=teamwork`);
  assert.equal(await pub.locator(".plugin-card").count(), 1, "the server-side search too");
  await pub.locator(".hero button.copy").click();
  await pub.locator(".hero button.copy", { hasText: "Copied" }).waitFor();
  result.clipboard.add = await pub.evaluate(() => navigator.clipboard.readText());
  await pub.locator("#plugin-team-tools button.copy").click();
  await pub.locator("#plugin-team-tools button.copy", { hasText: "Copied" }).waitFor();
  result.clipboard.install = await pub.evaluate(() => navigator.clipboard.readText());
  log("clipboard", result.clipboard);
  await pub.getByRole("link", { name: "Team tools" }).click();
  await pub.waitForURL(/\/marketplace\/team-tools$/);
  const installs = await pub.locator(".installs").innerText();
  assert.match(installs, /echo formatted/, "the public page says which hook it runs");
  assert.match(installs, /review 1\.0\.0/);
  await shot(pub, "marketplace-detail");

  // A member reads but cannot see admin pages.
  const memberCtx = await browser.newContext({ viewport: DESKTOP });
  const member = await memberCtx.newPage();
  await signIn(member, env("MEMBER_USER"));
  assert.equal(await member.getByRole("link", { name: "+ New plugin" }).count(), 0);
  for (const path of ["/portal/plugins/new", "/portal/tokens", "/portal/audit", "/portal/settings"]) {
    const r = await member.goto(`${ROOT}${path}`);
    assert.equal(r.status(), 403, `${path} for a member`);
    assert.match(await member.locator("main").innerText(), /for admins/);
  }
  await shot(member, "member-forbidden");

  assert.deepEqual(consoleErrors, [], "no script errors or CSP violations");
  result.tenant = TENANT;
} finally {
  await browser.close();
}
writeFileSync(env("RESULT"), JSON.stringify(result, null, 2));
log("done");
