// A stock OpenID Connect relying party (openid-client, OpenID Certified)
// against the OMS provider as the `console` public client: discovery,
// authorization code with PKCE, the sign-in page filled in by Playwright
// driving Debian's chromium headless, the code exchanged and the ID token
// validated, UserInfo, refresh, revocation, RP-initiated logout; then what
// a relying party must refuse: a tampered state and a reused code.
//
// usage: node oidc.mjs <issuer> <email> <password> [chromium]

import * as client from 'openid-client';
import { chromium } from 'playwright-core';

const [issuer, email, password, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!password) {
  console.error('usage: node oidc.mjs <issuer> <email> <password> [chromium]');
  process.exit(2);
}
const clientId = 'console';
const redirectUri = `${issuer}/console/callback`;
const afterLogout = `${issuer}/console/`;

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function refuses(what, action) {
  try {
    await action();
  } catch (error) {
    console.log(`openid-client: refused ${what}: ${error.code ?? error.name}: ${error.message}`);
    return;
  }
  throw new Error(`openid-client accepted ${what}`);
}

// Loopback over plain HTTP in the tests: openid-client insists on TLS
// unless told.
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests],
});
check(config.serverMetadata().issuer === issuer, 'discovery issuer');

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = await browser.newPage();

  // Authorizes in the browser and returns the URL the provider sent it
  // back to (the console's callback; nothing needs to answer there).
  async function authorize(params, signIn) {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile offline_access',
      code_challenge_method: 'S256',
      ...params,
    });
    const back = page.waitForRequest((request) => request.url().startsWith(redirectUri), {
      timeout: 20_000,
    });
    await page.goto(url.href);
    if (signIn) {
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }
    return new URL((await back).url());
  }

  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const callback = await authorize({ code_challenge: challenge, state, nonce }, true);

  // A relying party must refuse an answer whose state is not its own.
  const tampered = new URL(callback);
  tampered.searchParams.set('state', `${state}x`);
  await refuses('a tampered state', () =>
    client.authorizationCodeGrant(config, tampered, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    }),
  );

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  check(claims.iss === issuer && claims.aud === clientId, `ID token iss/aud: ${JSON.stringify(claims)}`);
  check(claims.email === email && typeof claims.auth_time === 'number', 'ID token email, auth_time');
  console.log(`openid-client: ID token for ${claims.sub} validated (EdDSA, nonce, iss, aud)`);

  // The same code again: the provider refuses it.
  await refuses('a reused code', () =>
    client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    }),
  );

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  check(info.email === email, `userinfo ${JSON.stringify(info)}`);

  // A second authorization is seamless: the session cookie signs it in.
  const verifier2 = client.randomPKCECodeVerifier();
  const state2 = client.randomState();
  const again = await authorize(
    { code_challenge: await client.calculatePKCECodeChallenge(verifier2), state: state2 },
    false,
  );
  const second = await client.authorizationCodeGrant(config, again, {
    pkceCodeVerifier: verifier2,
    expectedState: state2,
  });
  check(second.access_token, 'second sign-in without a password');

  // The reused code revoked what it had issued.
  await refuses('the refresh token of a reused code', () =>
    client.refreshTokenGrant(config, tokens.refresh_token),
  );
  const refreshed = await client.refreshTokenGrant(config, second.refresh_token);
  check(refreshed.refresh_token && refreshed.refresh_token !== second.refresh_token, 'rotation');
  await client.tokenRevocation(config, refreshed.refresh_token);
  await refuses('a revoked refresh token', () => client.refreshTokenGrant(config, refreshed.refresh_token));

  // RP-initiated logout ends the browser's session: back to the console
  // with the state, and prompt=none then finds nobody signed in.
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: afterLogout,
    state: 'signed-out',
  });
  const landed = page.waitForRequest((request) => request.url().startsWith(afterLogout));
  await page.goto(logout.href);
  check(new URL((await landed).url()).searchParams.get('state') === 'signed-out', 'logout state');
  const silent = await authorize(
    {
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      prompt: 'none',
    },
    false,
  );
  check(silent.searchParams.get('error') === 'login_required', `after logout: ${silent}`);

  console.log(
    'openid-client: discovery, code + PKCE (sign-in page in chromium), ID token, userinfo, refresh, revoke and logout passed',
  );
} finally {
  await browser.close();
}
