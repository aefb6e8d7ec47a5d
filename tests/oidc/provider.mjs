// Real OpenID Connect provider (npm `oidc-provider`) for studyflow integration tests.
//
//   OIDC_PORT=0 OIDC_REDIRECT_URI=http://127.0.0.1:8080/callback node tests/oidc/provider.mjs
//
// Prints exactly one line on stdout once listening:
//   oidc-provider listening on http://127.0.0.1:PORT
// (the issuer is that URL). Everything else (warnings, errors) goes to stderr.
// See README.md in this folder for the HTTP sequence a test client must follow.

import * as http from 'node:http';
import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';

// ---------------------------------------------------------------- settings

function intEnv(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function listEnv(name, dflt) {
  const raw = process.env[name];
  const items = (raw === undefined || raw === '' ? dflt : raw)
    .split(',').map((s) => s.trim()).filter(Boolean);
  return items;
}

const PORT = intEnv('OIDC_PORT', 0);
const HOST = '127.0.0.1';
const REDIRECT_URIS = listEnv('OIDC_REDIRECT_URI', 'http://127.0.0.1:8080/callback');
const POST_LOGOUT_REDIRECT_URIS = listEnv('OIDC_POST_LOGOUT_REDIRECT_URI', REDIRECT_URIS.join(','));
// Where the provider tells the client of a sign-out at the provider (Back-Channel Logout 1.0),
// naming the provider's session (`sid`); none when unset.
const BACKCHANNEL_LOGOUT_URI = process.env.OIDC_BACKCHANNEL_LOGOUT_URI || '';
const ID_TOKEN_TTL = intEnv('OIDC_ID_TOKEN_TTL', 300);
const ACCESS_TOKEN_TTL = intEnv('OIDC_ACCESS_TOKEN_TTL', 300);
const REFRESH_TOKEN_TTL = intEnv('OIDC_REFRESH_TOKEN_TTL', 24 * 60 * 60);
const AUTH_CODE_TTL = intEnv('OIDC_AUTH_CODE_TTL', 60);
// oidc-provider's default is 15 s of leeway when it checks its own tokens (e.g. an
// access token at /me or /token/introspection). 0 makes expiry tests exact.
const CLOCK_TOLERANCE = intEnv('OIDC_CLOCK_TOLERANCE', 0);

const CLIENT_ID = 'studyflow';
const CLIENT_SECRET = 'studyflow-test-secret';
const PASSWORD = 'test-password';

// login name -> account. `sub` is the account id.
// `acr`: how the provider signs the account in — with a second factor (MFA) or a password alone.
const ACR_MFA = 'urn:studyflow:test:mfa';
const ACR_PASSWORD = 'urn:studyflow:test:password';
const ACCOUNTS = new Map([
  ['inese.kalnina', { sub: 'sub-inese', name: 'Inese Kalniņa', email: 'inese.kalnina@example.test', acr: ACR_MFA }],
  ['gatis.krumins', { sub: 'sub-gatis', name: 'Gatis Krūmiņš', email: 'gatis.krumins@example.test', acr: ACR_MFA }],
  ['eve.sample', { sub: 'sub-eve', name: 'Eve Sample', email: 'eve.sample@example.test', acr: ACR_PASSWORD }],
].map(([login, a]) => [login, { ...a, preferred_username: login }]));
const ACCOUNTS_BY_SUB = new Map([...ACCOUNTS.values()].map((a) => [a.sub, a]));

// ---------------------------------------------------------------- keys

// Fresh RS256 key per process: tests must fetch the JWKS, never pin a key.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `studyflow-test-${crypto.randomBytes(4).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

// ---------------------------------------------------------------- small helpers

function html(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>studyflow test OP</title></head><body>\n${body}\n</body></html>\n`);
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, params, error) {
  return `<h1>Sign in to studyflow test OP</h1>
${error ? `<p class="error" id="error">${esc(error)}</p>` : ''}
<p>client: ${esc(params.client_id)}; scope: ${esc(params.scope ?? '')}</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
  <input type="text" name="login" autocomplete="username" autofocus>
  <input type="password" name="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`;
}

// Creates (or extends) the Grant so that it covers everything requested.
async function grantEverything(provider, interaction, accountId) {
  const { prompt: { details }, params } = interaction;
  const grantId = interaction.grantId ?? interaction.session?.grantId;
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  // params.scope has already been filtered by the provider (e.g. offline_access is
  // dropped unless prompt=consent was requested), so granting it all is safe.
  if (params.scope) grant.addOIDCScope(params.scope);
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  if (params.claims) {
    const { id_token: idt = {}, userinfo = {} } = JSON.parse(params.claims);
    grant.addOIDCClaims([...Object.keys(idt), ...Object.keys(userinfo)]);
  }
  if (details.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return grant.save();
}

// ---------------------------------------------------------------- interactions
//
// GET  /interaction/:uid          prompt=login   -> 200 HTML login form
//                                 prompt=consent -> consent auto-granted, 303 to /auth/:uid
// POST /interaction/:uid/login    login, password -> 303 to /auth/:uid (login + consent granted)
//                                 bad credentials -> 200 HTML form with an error
// POST /interaction/:uid/confirm  grants consent explicitly -> 303 to /auth/:uid
// POST /interaction/:uid/abort    -> 303 to /auth/:uid -> redirect_uri?error=access_denied

async function handleInteraction(provider, req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return html(res, 404, '<p>not found</p>');
  const [, uid, action] = m;

  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    return html(res, 400, `<p id="error">${esc(err.name)}: ${esc(err.error_description ?? err.message)}</p>
<p>The <code>_interaction</code> cookie set by the /auth response must be sent back.</p>`);
  }
  if (interaction.uid !== uid) {
    return html(res, 400, '<p id="error">interaction uid does not match the _interaction cookie</p>');
  }
  const { prompt, params, session } = interaction;

  if (!action) {
    if (req.method !== 'GET') return html(res, 405, '<p>method not allowed</p>');
    if (prompt.name === 'login') return html(res, 200, loginPage(uid, params));
    if (prompt.name === 'consent') {
      const grantId = await grantEverything(provider, interaction, session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return html(res, 400, `<p id="error">unsupported prompt ${esc(prompt.name)}</p>`);
  }

  if (req.method !== 'POST') return html(res, 405, '<p>method not allowed</p>');
  const form = await readForm(req);

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (action === 'confirm') {
    if (prompt.name !== 'consent' || !session?.accountId) {
      return html(res, 400, '<p id="error">no consent prompt pending</p>');
    }
    const grantId = await grantEverything(provider, interaction, session.accountId);
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  // action === 'login'
  if (prompt.name !== 'login') {
    return html(res, 400, `<p id="error">no login prompt pending (prompt is ${esc(prompt.name)})</p>`);
  }
  const login = form.get('login') ?? '';
  const password = form.get('password') ?? '';
  const account = ACCOUNTS.get(login);
  if (!account || password !== PASSWORD) {
    return html(res, 200, loginPage(uid, params, 'invalid login or password'));
  }
  // Grant consent in the same step so the test needs a single POST.
  const grantId = await grantEverything(provider, interaction, account.sub);
  return provider.interactionFinished(req, res, {
    login: {
      accountId: account.sub,
      acr: account.acr,
      amr: account.acr === ACR_MFA ? ['pwd', 'otp'] : ['pwd'],
    },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// ---------------------------------------------------------------- provider

function configuration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      client_name: 'studyflow (integration tests)',
      application_type: 'web',
      redirect_uris: REDIRECT_URIS,
      post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
      ...(BACKCHANNEL_LOGOUT_URI ? {
        backchannel_logout_uri: BACKCHANNEL_LOGOUT_URI,
        backchannel_logout_session_required: true,
      } : {}),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // oidc-provider treats client_secret_basic and client_secret_post as
      // interchangeable for a client registered with either, so both work.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      scope: 'openid profile email offline_access',
    }],
    jwks: { keys: [signingJwk] },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    acrValues: [ACR_MFA, ACR_PASSWORD],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      acr: null,
      amr: null,
      sid: null,
      auth_time: null,
    },
    // Put the scope-derived claims (preferred_username, name, email) into the ID token
    // of the code flow too, not only into /me (userinfo).
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const a = ACCOUNTS_BY_SUB.get(sub);
      if (!a) return undefined;
      return {
        accountId: a.sub,
        async claims(_use, _scope, _claims, _rejected) {
          return {
            sub: a.sub,
            name: a.name,
            preferred_username: a.preferred_username,
            email: a.email,
            email_verified: true,
          };
        },
      };
    },
    // A refresh token with every sign-in of this client, without `offline_access` (as
    // Keycloak and most enterprise providers do): bound to the person's standing here, so
    // studyflow can ask again whether they still are who they were.
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('openid');
    },
    // PKCE (S256 only) for every client, including this confidential one.
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Only the client a token was issued to may revoke / introspect it.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      // The `claims` request parameter: studyflow asks for `amr` with it (--oidc-amr).
      claimsParameter: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // GET /session/end renders `form` (hidden xsrf, action /session/end/confirm);
        // submitting it with logout=yes ends the OP session.
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign out</title></head><body>
<h1>Sign out of the studyflow test OP?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>
</body></html>`;
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = '<!DOCTYPE html><html><body><h1 id="logged-out">Signed out</h1></body></html>';
        },
      },
    },
    clientBasedCORS: () => false, // tests are not browsers
    // The back-channel logout goes to studyflow on loopback, which oidc-provider's guard
    // against requests to special-use addresses refuses: this test provider's outgoing
    // requests use the plain fetch (a provider in service keeps the guard).
    fetch: (url, options) => {
      const { dispatcher: _guard, ...plain } = options;
      return fetch(url, plain);
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: {
      // Signed cookies (keygrip). No `secure` flag: the OP is plain http on loopback.
      keys: ['studyflow-oidc-test-cookie-key-1'],
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    clockTolerance: CLOCK_TOLERANCE,
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      AuthorizationCode: AUTH_CODE_TTL,
      IdToken: ID_TOKEN_TTL,
      RefreshToken: REFRESH_TOKEN_TTL,
      Interaction: 600,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    renderError(ctx, out, _error) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1><pre id="error">${esc(JSON.stringify(out))}</pre></body></html>`;
    },
  };
}

// stdout carries exactly one line (the "listening" line, written with process.stdout.write).
// oidc-provider prints its NOTICEs with console.info, i.e. to stdout: send all console
// output to stderr instead.
console.log = console.error;
console.info = console.error;

const server = http.createServer();
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = `http://${HOST}:${port}`;
  const provider = new Provider(issuer, configuration());
  provider.proxy = false; // plain http, no reverse proxy in front
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  provider.on('backchannel.error', (_ctx, err, client) => console.error(`oidc-provider: the back-channel logout to ${client.clientId} failed:`, err.message, err.cause?.message ?? ''));

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    // Test control: POST /test/disable with login=… removes the person, as if they had left
    // the Service: they sign in no more and their refresh tokens are refused (invalid_grant).
    if (url.pathname === '/test/disable' && req.method === 'POST') {
      readForm(req).then((form) => {
        const a = ACCOUNTS.get(form.get('login') ?? '');
        if (!a) return html(res, 404, '<p id="error">no such login</p>');
        ACCOUNTS.delete(a.preferred_username);
        ACCOUNTS_BY_SUB.delete(a.sub);
        return html(res, 200, '<p id="disabled">disabled</p>');
      }).catch((err) => html(res, 400, `<p id="error">${esc(err.message)}</p>`));
      return;
    }
    // Test control: POST /test/client-secret with secret=… gives the client a new secret, as
    // an administrator of the provider does when the old one is to expire: from then on only
    // the new one authenticates the client (its refresh tokens stay good).
    if (url.pathname === '/test/client-secret' && req.method === 'POST') {
      readForm(req).then(async (form) => {
        const secret = form.get('secret') ?? '';
        if (!secret) return html(res, 400, '<p id="error">no secret</p>');
        const client = await provider.Client.find(CLIENT_ID);
        client.clientSecret = secret;
        return html(res, 200, '<p id="changed">changed</p>');
      }).catch((err) => html(res, 400, `<p id="error">${esc(err.message)}</p>`));
      return;
    }
    if (url.pathname === '/interaction' || url.pathname.startsWith('/interaction/')) {
      handleInteraction(provider, req, res, url).catch((err) => {
        console.error('interaction error:', err);
        if (!res.headersSent) html(res, 500, `<p id="error">${esc(err.message)}</p>`);
        else res.end();
      });
      return;
    }
    callback(req, res);
  });

  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
