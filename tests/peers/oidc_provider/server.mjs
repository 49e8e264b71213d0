// A real OpenID Connect provider for the tests: panva's oidc-provider (the certified
// Node.js implementation) served by node, with its own login page that checks passwords.
//   node server.mjs config.json
// config.json: {"port", "issuer", "clients": [{client_id, client_secret, redirect_uris}],
//               "users": [{sub, username, password, email, name, groups}]}
// Binds 127.0.0.1 only. Consent is implied for the configured (first-party) clients.
import http from "node:http";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const users = config.users;
const bySub = new Map(users.map((u) => [u.sub, u]));
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-signing", use: "sig", alg: "RS256" };
const SCOPE = "openid email profile groups";

const provider = new Provider(config.issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_post",
    ...c,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: ["onfh-test-provider-cookie-key"] },
  scopes: SCOPE.split(" "),
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username", "given_name", "family_name"],
    groups: ["groups"],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      async claims() {
        const [given, ...family] = (u.name || "").split(" ");
        return {
          sub, email: u.email, email_verified: true, name: u.name, given_name: given,
          family_name: family.join(" "), preferred_username: u.username, groups: u.groups,
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const accountId = ctx.oidc.session.accountId;
    if (!accountId) return undefined;
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId });
    grant.addOIDCScope(SCOPE);
    await grant.save();
    return grant;
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(res, uid, error = "") {
  res.writeHead(error ? 401 : 200, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html><head><title>Hospital sign-in</title></head><body>
<h1 id="idp-title">Hospital identity provider</h1>
${error ? `<p id="idp-error">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login" id="idp-login">
<label>User <input name="login" id="idp-user" autocomplete="username"></label>
<label>Password <input name="password" id="idp-password" type="password"></label>
<button type="submit" id="idp-submit">Sign in</button></form></body></html>`);
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = new URL(req.url, config.issuer).pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (!match[2]) return loginPage(res, details.uid);
    const form = await readForm(req);
    const user = users.find((u) => u.username === form.get("login") && u.password === form.get("password"));
    if (!user) return loginPage(res, details.uid, "Unknown user or wrong password.");
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.writeHead(400, { "content-type": "text/plain" });
    res.end(`interaction failed: ${err.message}`);
  }
});
server.listen(config.port, "127.0.0.1", () => console.log(`oidc provider ${config.issuer} ready`));
