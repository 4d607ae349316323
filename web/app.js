'use strict';

const config = window.APP_CONFIG || {};
const AUTH_URL = (config.authUrl || 'http://localhost:8080').replace(/\/+$/, '');
const API_URL = (config.apiUrl || 'http://localhost:8081').replace(/\/+$/, '');
// Tabs take turns refreshing (see `withRefreshLock`). Only the browser test
// turns this off (`refreshLock: false` in config.js), to show that the
// server's grace alone keeps two tabs logged in.
const REFRESH_LOCK = config.refreshLock !== false;
// A refresh that takes longer than this is given up and tried once more.
// Well inside the server's reuse grace (10 s by default): a retry of a
// refresh whose answer never came is then still answered with the very
// token that answer carried.
const REFRESH_TIMEOUT_MS = 5000;

// The access token lives in this variable and nowhere else: not in storage,
// not in the DOM, not in a log. A reload loses it, and `restore` gets a new
// one with the HttpOnly refresh cookie.
let accessToken = null;

// The refresh in flight, if any. Every call that fails meanwhile waits for
// this one instead of starting its own: each refresh rotates the cookie, so a
// second one would present a token the first has just consumed.
let refreshing = null;

/** The refresh token was refused: the session is over. */
class SessionEnded extends Error {}

/** Any other failure, worded for a person. */
class Failure extends Error {}

/** The user cancelled the step-up an action needed: nothing more to say. */
class Abandoned extends Error {}

const $ = (id) => document.getElementById(id);

// An e-mail link (`#reset=…`, `#verify=…`) carries its token in the
// fragment, which never reaches a server or a Referer. Read it once and take
// it out of the address bar (and so out of history and bookmarks) before
// any request is made.
const emailLink = (() => {
  const match = /^#(reset|verify)=([A-Za-z0-9_-]{1,128})$/.exec(window.location.hash);
  if (window.location.hash) {
    history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return match ? { kind: match[1], token: match[2] } : null;
})();

// ---------------------------------------------------------------- requests

async function send(base, path, { method = 'GET', json, token, timeout = 15000 } = {}) {
  const headers = {};
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      // The refresh cookie is scoped to the auth server's /auth path; the
      // resource API needs nothing but the Bearer token.
      credentials: base === AUTH_URL ? 'include' : 'omit',
      cache: 'no-store',
      // A hung request must not hold the refresh lock, and with it every
      // tab, forever.
      signal: AbortSignal.timeout(timeout),
    });
  } catch {
    record(method, path, 'unreachable');
    throw new Failure(`Cannot reach ${base}. Is the service running?`);
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  record(method, path, response.status, body && body.error);
  return { status: response.status, body };
}

function describe({ status, body }) {
  return (body && body.error_description) || `the server answered ${status}`;
}

/** Runs `task` while no other tab of this app refreshes. */
function withRefreshLock(task) {
  // Tabs share the cookie. Two refreshing at the same moment present the
  // same refresh token twice: the server rotates it once and answers the
  // other within its grace with the same new cookie, so both stay logged
  // in. The lock still saves that second rotation attempt: tabs take turns,
  // and the second one presents the cookie the first has already rotated.
  if (REFRESH_LOCK && navigator.locks) return navigator.locks.request('auth-refresh', task);
  return task(); // No Web Locks (an insecure context): the grace does it.
}

/** POST /auth/refresh, tried once more when no answer came. */
async function sendRefresh() {
  const request = () => send(AUTH_URL, '/auth/refresh', { method: 'POST', timeout: REFRESH_TIMEOUT_MS });
  try {
    return await request();
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    // The server may have rotated the cookie and the answer (with the new
    // cookie) been lost on the way. The retry presents the old cookie,
    // which the server recognises within its grace: it answers with the
    // very cookie the lost answer carried, never a second one.
    return request();
  }
}

function refresh() {
  if (!refreshing) {
    refreshing = withRefreshLock(async () => {
      const answer = await sendRefresh();
      if (answer.status === 200) {
        accessToken = answer.body.access_token;
        return;
      }
      if (answer.status === 401) {
        accessToken = null;
        throw new SessionEnded(describe(answer));
      }
      throw new Failure(`Could not renew the session: ${describe(answer)}.`);
    }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A 401 that asks for a recent (or stronger) proof of the user (RFC 9470). */
function needsStepUp({ status, body }) {
  return status === 401 && Boolean(body) && body.error === 'insufficient_user_authentication';
}

/** A call with the access token; on a 401, one refresh and one retry. */
async function withAccessToken(base, path, options = {}) {
  if (!accessToken) await refresh();
  const used = accessToken;
  const answer = await send(base, path, { ...options, token: used });
  // A refresh keeps the session's proof as it was: it cannot answer a
  // step-up challenge.
  if (answer.status !== 401 || needsStepUp(answer)) return answer;
  // A call that failed after another one's refresh retries with that new
  // token rather than rotating again.
  if (accessToken === used) await refresh();
  return send(base, path, { ...options, token: accessToken });
}

/**
 * A call with the access token, refreshed when it has expired; when the
 * action needs a recent proof of the user, the step-up prompt and one retry
 * with the access token it gives.
 */
async function authorized(base, path, options = {}) {
  const answer = await withAccessToken(base, path, options);
  if (!needsStepUp(answer)) return answer;
  await stepUp();
  return send(base, path, { ...options, token: accessToken });
}

// ---------------------------------------------------------------- views

function showMessage(text, kind = 'info') {
  const message = $('message');
  message.textContent = text;
  message.className = kind;
  message.hidden = !text;
}

function showLoggedOut(text, kind = 'info') {
  accessToken = null;
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('passkey-login').hidden = !passkeysSupported();
  $('reset-view').hidden = true;
  hideSecondStep();
  abandonStepUp();
  hideSecurity();
  $('me').replaceChildren();
  $('sessions').replaceChildren();
  $('events').replaceChildren();
  $('verify-banner').hidden = true;
  hideAdmin();
  showMessage(text, kind);
}

async function showLoggedIn() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('password').value = '';
  await reload();
}

/** Both panels at once: after an expiry they share a single refresh. */
async function reload() {
  // Settle both before reporting, so nothing renders after the page has
  // said the session ended; that news wins over any other failure.
  const results = await Promise.allSettled([loadMe(), loadSessions(), loadEvents(), loadSecurity()]);
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  if (failures.length) throw failures.find((e) => e instanceof SessionEnded) || failures[0];
  // With the token these calls settled on: its roles say whether to show it.
  await loadAdmin();
}

function time(iso) {
  return new Date(iso).toLocaleString();
}

async function loadMe() {
  const answer = await authorized(API_URL, '/api/me');
  if (answer.status !== 200) throw new Failure(`/api/me failed: ${describe(answer)}.`);
  const me = answer.body;
  $('verify-banner').hidden = me.email_verified;
  const rows = [
    ['email', 'Email', me.email],
    ['user', 'User id', me.user_id],
    ['session', 'Session id', me.session_id],
    ['verified', 'Address verified', me.email_verified ? 'yes' : 'not yet'],
    ['roles', 'Roles', me.roles.length ? me.roles.join(', ') : 'none'],
    ['expires', 'Access token expires', time(me.expires_at)],
  ];
  $('me').replaceChildren(...rows.flatMap(([field, label, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.field = field;
    dd.textContent = value;
    return [dt, dd];
  }));
}

async function loadSessions() {
  const answer = await authorized(AUTH_URL, '/auth/sessions');
  if (answer.status !== 200) throw new Failure(`Listing sessions failed: ${describe(answer)}.`);
  $('sessions').replaceChildren(...answer.body.sessions.map(sessionItem));
}

/** The user's own security events, newest first. */
async function loadEvents() {
  const answer = await authorized(AUTH_URL, '/auth/events?limit=10');
  if (answer.status !== 200) throw new Failure(`Listing activity failed: ${describe(answer)}.`);
  $('events').replaceChildren(...answer.body.events.map((event) => {
    const item = document.createElement('li');
    item.dataset.type = event.type;
    const what = document.createElement('strong');
    what.textContent = EVENT_NAMES[event.type] || event.type;
    const details = document.createElement('small');
    details.textContent = ` ${time(event.at)} · ${event.ip || 'unknown address'}`;
    item.append(what, details);
    return item;
  }));
}

const EVENT_NAMES = {
  register: 'Account created',
  login: 'Logged in',
  login_failed: 'Failed login',
  refresh_reuse_detected: 'Stolen session stopped',
  logout: 'Logged out',
  logout_all: 'Logged out everywhere',
  session_deleted: 'Session revoked',
  session_evicted: 'Oldest session ended',
  password_changed: 'Password changed',
  password_reset_requested: 'Password reset requested',
  password_reset: 'Password reset',
  email_verified: 'Address verified',
  user_disabled: 'Disabled by an administrator',
  user_enabled: 'Enabled by an administrator',
  user_deleted: 'Deleted by an administrator',
  roles_changed: 'Roles changed',
  mfa_enabled: 'Second factor turned on',
  mfa_disabled: 'Second factor turned off',
  recovery_codes_regenerated: 'New recovery codes',
  recovery_code_used: 'Recovery code used',
  mfa_failed: 'Failed second factor',
  mfa_reset: 'Second factors reset by an administrator',
  passkey_added: 'Passkey added',
  passkey_removed: 'Passkey removed',
  passkey_clone_suspected: 'Copied passkey refused',
  reauthenticated: 'Identity confirmed again',
};

function sessionItem(session) {
  const item = document.createElement('li');
  item.dataset.sessionId = session.id;
  const about = document.createElement('div');
  const created = document.createElement('strong');
  created.textContent = `Logged in ${time(session.created_at)}`;
  const details = document.createElement('small');
  details.textContent = `last used ${time(session.last_used_at)} · `
    + `${session.user_agent || 'unknown client'}`;
  about.append(created, document.createElement('br'), details);
  item.append(about);
  if (session.current) {
    item.dataset.current = 'true';
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = 'this session';
    item.append(badge);
  } else {
    const revoke = document.createElement('button');
    revoke.type = 'button';
    revoke.className = 'revoke secondary';
    revoke.textContent = 'Revoke';
    revoke.addEventListener('click', () => act(() => revokeSession(session.id)));
    item.append(revoke);
  }
  return item;
}

/** The last requests, so the refreshes can be watched; never a token. */
function record(method, path, status, error) {
  const entry = `${method} ${path} ${status}`;
  const item = document.createElement('li');
  item.dataset.entry = entry;
  const at = new Date().toLocaleTimeString();
  item.textContent = `${at}  ${method} ${path} → ${status}${error ? ` ${error}` : ''}`;
  if (typeof status !== 'number' || status >= 400) item.className = 'failed';
  const log = $('log');
  log.prepend(item);
  while (log.children.length > 50) log.lastChild.remove();
}

// ---------------------------------------------------------------- second factor

// The last `GET /auth/mfa`: what the user has decides what the security
// card offers and what the step-up prompt asks for.
let mfa = null;
// The last `GET /auth/passkeys`: the user's passkeys, listed in the card.
let passkeys = [];

function hasTotp() {
  return Boolean(mfa && mfa.totp && mfa.totp.enabled);
}

function hasPasskey() {
  return passkeys.length > 0;
}

function hasSecondFactor() {
  return hasTotp() || hasPasskey();
}

async function loadSecurity() {
  const [answer, list] = await Promise.all([
    authorized(AUTH_URL, '/auth/mfa'),
    authorized(AUTH_URL, '/auth/passkeys'),
  ]);
  if (answer.status !== 200) throw new Failure(`Reading your second factor failed: ${describe(answer)}.`);
  if (list.status !== 200) throw new Failure(`Listing your passkeys failed: ${describe(list)}.`);
  mfa = answer.body;
  passkeys = list.body.passkeys;
  renderSecurity();
}

function renderSecurity() {
  const totpOn = hasTotp();
  const status = $('totp-status');
  status.dataset.enabled = String(totpOn);
  status.textContent = totpOn ? `on since ${time(mfa.totp.created_at)}` : 'off';
  const remaining = $('recovery-remaining');
  remaining.dataset.count = String(mfa.recovery_codes_remaining);
  remaining.textContent = String(mfa.recovery_codes_remaining);
  $('totp-setup').hidden = totpOn || !$('totp-enrol').hidden;
  $('totp-disable').hidden = !totpOn;
  $('recovery-regenerate').hidden = !hasSecondFactor();
  renderPasskeys();
  renderAssurance();
}

/** How this session's access token says the user proved who they are. */
function renderAssurance() {
  const { acr, amr, auth_time: authTime } = tokenClaims();
  const assurance = $('session-assurance');
  assurance.dataset.acr = acr || '';
  assurance.dataset.amr = Array.isArray(amr) ? amr.join(' ') : '';
  assurance.textContent = acr
    ? `${strength(acr, amr)} (${acr}), last proved ${time(authTime * 1000)}`
    : 'unknown';
}

function strength(acr, amr) {
  if (Array.isArray(amr) && amr.includes('hwk') && !amr.includes('mfa')) return 'a passkey';
  return acr === 'aal2' ? 'two factors' : 'one factor';
}

function hideSecurity() {
  mfa = null;
  passkeys = [];
  $('passkeys').replaceChildren();
  $('passkey-name').value = '';
  hideEnrolment();
  hideRecoveryCodes();
  for (const id of ['totp-status', 'recovery-remaining', 'session-assurance', 'step-up-result']) {
    const element = $(id);
    element.textContent = '';
    for (const key of Object.keys(element.dataset)) delete element.dataset[key];
  }
}

/** Draws `text` as a QR code on `canvas`, with the quiet zone readers need. */
function drawQr(canvas, text) {
  const qr = window.qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const modules = qr.getModuleCount();
  const quiet = 4;
  const scale = 4;
  const size = (modules + 2 * quiet) * scale;
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, size, size);
  context.fillStyle = '#000';
  for (let row = 0; row < modules; row += 1) {
    for (let col = 0; col < modules; col += 1) {
      if (qr.isDark(row, col)) {
        context.fillRect((col + quiet) * scale, (row + quiet) * scale, scale, scale);
      }
    }
  }
}

/** A pending enrolment: the secret for the user's app, until confirmed. */
async function startTotp() {
  const answer = await authorized(AUTH_URL, '/auth/mfa/totp', { method: 'POST' });
  if (answer.status !== 200) throw new Failure(`The set-up did not start: ${describe(answer)}.`);
  showEnrolment(answer.body);
}

function showEnrolment({ secret, otpauth_uri: uri }) {
  // Grouped by four, as authenticator apps print keys; they ignore spaces.
  $('totp-secret').textContent = secret.replace(/(.{4})(?=.)/g, '$1 ');
  $('totp-link').href = uri;
  drawQr($('totp-qr'), uri);
  $('totp-code').value = '';
  $('totp-enrol').hidden = false;
  $('totp-setup').hidden = true;
  $('totp-code').focus();
}

function hideEnrolment() {
  $('totp-enrol').hidden = true;
  $('totp-secret').textContent = '';
  $('totp-link').href = '#';
  $('totp-code').value = '';
  $('totp-qr').width = 0; // A canvas given a size again is blank.
  $('totp-setup').hidden = !mfa || hasTotp();
}

async function confirmTotp() {
  if (!$('totp-confirm-form').reportValidity()) return;
  const answer = await authorized(AUTH_URL, '/auth/mfa/totp/confirm', {
    method: 'POST',
    json: { code: $('totp-code').value.trim() },
  });
  $('totp-code').value = '';
  if (answer.status === 403) throw new Failure('That is not the code your app shows: try again.');
  if (answer.status === 404) {
    hideEnrolment();
    throw new Failure('That set-up was replaced or has expired: start it again.');
  }
  if (answer.status !== 200) throw new Failure(`The authenticator app is not on: ${describe(answer)}.`);
  hideEnrolment();
  showRecoveryCodes(answer.body.recovery_codes);
  showMessage('Your authenticator app is on: logging in now asks for its code.');
  await loadSecurity();
}

/** Recovery codes, shown this once: the server keeps only their hashes. */
function showRecoveryCodes(codes) {
  if (!codes.length) return;
  $('recovery-codes').replaceChildren(...codes.map((code) => {
    const item = document.createElement('li');
    item.textContent = code;
    return item;
  }));
  $('recovery-view').hidden = false;
}

function hideRecoveryCodes() {
  $('recovery-codes').replaceChildren();
  $('recovery-view').hidden = true;
}

async function regenerateRecoveryCodes() {
  const answer = await authorized(AUTH_URL, '/auth/mfa/recovery-codes', { method: 'POST' });
  if (answer.status !== 200) throw new Failure(`No new recovery codes: ${describe(answer)}.`);
  showRecoveryCodes(answer.body.recovery_codes);
  showMessage('New recovery codes: the old ones no longer work.');
  await loadSecurity();
}

async function disableTotp() {
  if (!window.confirm('Turn off the authenticator app? Logging in will ask for your password alone.')) return;
  const answer = await authorized(AUTH_URL, '/auth/mfa/totp', { method: 'DELETE' });
  if (answer.status !== 204) throw new Failure(`The authenticator app is still on: ${describe(answer)}.`);
  hideRecoveryCodes();
  showMessage('Your authenticator app is off.');
  await loadSecurity();
}

/** The resource API's route for sessions that proved two factors lately. */
async function checkStepUp() {
  const result = $('step-up-result');
  result.textContent = '';
  delete result.dataset.status;
  const answer = await authorized(API_URL, '/api/step-up');
  result.dataset.status = String(answer.status);
  if (answer.status !== 200) throw new Failure(`/api/step-up refused: ${describe(answer)}.`);
  result.textContent = `Allowed at ${new Date().toLocaleTimeString()}.`;
}

$('totp-setup').addEventListener('click', () => act(startTotp));
$('totp-confirm-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(confirmTotp);
});
$('totp-cancel').addEventListener('click', hideEnrolment);
$('recovery-saved').addEventListener('click', hideRecoveryCodes);
$('recovery-regenerate').addEventListener('click', () => act(regenerateRecoveryCodes));
$('totp-disable').addEventListener('click', () => act(disableTotp));
$('step-up-button').addEventListener('click', () => act(checkStepUp));

// ---------------------------------------------------------------- passkeys

/** Whether this browser makes and uses passkeys from WebAuthn's JSON forms. */
function passkeysSupported() {
  return Boolean(window.PublicKeyCredential
    && PublicKeyCredential.parseCreationOptionsFromJSON
    && PublicKeyCredential.parseRequestOptionsFromJSON);
}

/** A new passkey on this device, for the server's creation `options`. */
function createPasskey(options) {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  return askDevice(() => navigator.credentials.create({ publicKey }));
}

/** The device's assertion with one of the passkeys the request `options` allow. */
function usePasskey(options) {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  return askDevice(() => navigator.credentials.get({ publicKey }));
}

/** The device's answer as the auth server takes it (`toJSON()`), or a Failure in words. */
async function askDevice(ceremony) {
  let credential;
  try {
    credential = await ceremony();
  } catch (error) {
    throw new Failure(deviceRefusal(error));
  }
  if (!credential) throw new Failure('Your device gave no passkey.');
  return credential.toJSON();
}

function deviceRefusal(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
      return 'No passkey was used: the prompt was cancelled or timed out, '
        + 'or your device could not verify that it is you.';
    case 'InvalidStateError':
      return 'This device already holds a passkey for your account.';
    case 'SecurityError':
      return 'Passkeys cannot be used from this address (it is not the site they belong to).';
    default:
      return `Your device refused: ${(error && error.message) || 'no reason given'}.`;
  }
}

function renderPasskeys() {
  const items = passkeys.map(passkeyItem);
  if (!items.length) {
    const none = document.createElement('li');
    none.textContent = 'None yet.';
    items.push(none);
  }
  $('passkeys').replaceChildren(...items);
  $('passkey-add-form').hidden = !passkeysSupported();
}

function passkeyItem(passkey) {
  const item = document.createElement('li');
  item.dataset.passkeyId = passkey.id;
  item.dataset.name = passkey.name;
  const about = document.createElement('div');
  const name = document.createElement('strong');
  name.textContent = passkey.name;
  const details = document.createElement('small');
  details.textContent = `added ${time(passkey.created_at)} · `
    + (passkey.last_used_at ? `last used ${time(passkey.last_used_at)}` : 'never used');
  about.append(name, document.createElement('br'), details);
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'remove danger';
  remove.textContent = 'Remove';
  remove.addEventListener('click', () => act(() => removePasskey(passkey)));
  item.append(about, remove);
  return item;
}

/** register/start, the device makes the passkey, register/finish. */
async function addPasskey() {
  const start = await authorized(AUTH_URL, '/auth/passkeys/register/start', { method: 'POST' });
  if (start.status !== 200) throw new Failure(`Adding a passkey did not start: ${describe(start)}.`);
  const credential = await createPasskey(start.body.options);
  const name = $('passkey-name').value.trim();
  const answer = await authorized(AUTH_URL, '/auth/passkeys/register/finish', {
    method: 'POST',
    json: { challenge_id: start.body.challenge_id, credential, ...(name ? { name } : {}) },
  });
  if (answer.status !== 201) throw new Failure(`The passkey was not added: ${describe(answer)}.`);
  $('passkey-name').value = '';
  showRecoveryCodes(answer.body.recovery_codes || []);
  showMessage(`Passkey "${answer.body.name}" added: it signs you in alone, or as a second factor.`);
  await loadSecurity();
}

async function removePasskey({ id, name }) {
  if (!window.confirm(`Remove the passkey "${name}"? The sessions signed in with it end.`)) return;
  const answer = await authorized(AUTH_URL, `/auth/passkeys/${encodeURIComponent(id)}`, {
    method: 'DELETE',
  });
  if (answer.status !== 204) throw new Failure(`The passkey is still there: ${describe(answer)}.`);
  showMessage(`Passkey "${name}" removed, and the sessions it signed in ended.`);
  // This session may be one of them: then the reload says it has ended.
  await reload();
}

$('passkey-add-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(addPasskey);
});

// ---------------------------------------------------------------- second-factor fields

/**
 * Which second-factor field a form (`mfa` or `step-up`) shows: `code` (the
 * authenticator app's), `recovery`, or `none`; with a switch between the
 * first two when the user has both.
 */
function showFactorField(form, field, canSwitch) {
  const code = field === 'code';
  const recovery = field === 'recovery';
  $(`${form}-code-label`).hidden = !code;
  $(`${form}-recovery-label`).hidden = !recovery;
  $(`${form}-code`).required = code;
  $(`${form}-recovery`).required = recovery;
  $(`${form}-code`).value = '';
  $(`${form}-recovery`).value = '';
  const toggle = $(`${form}-switch`);
  toggle.hidden = !canSwitch;
  toggle.textContent = recovery ? 'Use the authenticator app' : 'Use a recovery code instead';
}

function switchFactorField(form) {
  const usingCode = !$(`${form}-code-label`).hidden;
  showFactorField(form, usingCode ? 'recovery' : 'code', true);
  $(`${form}-${usingCode ? 'recovery' : 'code'}`).focus();
}

/** What the form's second-factor field holds, named as the auth server takes it. */
function factorProof(form) {
  if (!$(`${form}-code-label`).hidden) return { code: $(`${form}-code`).value.trim() };
  if (!$(`${form}-recovery-label`).hidden) return { recovery_code: $(`${form}-recovery`).value.trim() };
  return {};
}

// ---------------------------------------------------------------- step-up

// The step-up prompt on screen, if any: every call refused for want of a
// recent proof awaits this one outcome, and retries once it is in.
let steppingUp = null;
const stepUpPrompt = { resolve: null, reject: null };

/** Asks the user to prove who they are again; resolves with a new access token in place. */
function stepUp() {
  if (!steppingUp) {
    steppingUp = openStepUp().finally(() => {
      steppingUp = null;
    });
  }
  return steppingUp;
}

async function openStepUp() {
  if (!mfa) await loadSecurity();
  return new Promise((resolve, reject) => {
    Object.assign(stepUpPrompt, { resolve, reject });
    let field = 'none';
    if (hasSecondFactor()) field = hasTotp() ? 'code' : 'recovery';
    showFactorField('step-up', field, hasTotp());
    $('step-up-passkey').hidden = !(hasPasskey() && passkeysSupported());
    $('step-up-error').hidden = true;
    $('step-up-dialog').showModal();
    $('step-up-password').focus();
  });
}

async function submitStepUp() {
  if (!$('step-up-form').reportValidity()) return;
  const proof = { password: $('step-up-password').value, ...factorProof('step-up') };
  await inStepUp(() => reauthenticate(proof, 'That password or code is not right. Try again.'));
}

/** The passkey alone answers the prompt: reauthenticate/passkey, the device, reauthenticate. */
async function stepUpWithPasskey() {
  await inStepUp(async () => {
    const start = await withAccessToken(AUTH_URL, '/auth/reauthenticate/passkey', { method: 'POST' });
    if (start.status !== 200) throw new Failure(`The passkey was not asked for: ${describe(start)}.`);
    const credential = await usePasskey(start.body.options);
    const passkey = { challenge_id: start.body.challenge_id, credential };
    await reauthenticate({ passkey }, 'That passkey was refused. Try again.');
  });
}

/** Runs a step of the prompt, its failures shown in the prompt itself. */
async function inStepUp(step) {
  try {
    await step();
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    showStepUpError(error.message);
  }
}

/** POST /auth/reauthenticate: a new access token for this session, the cookie untouched. */
async function reauthenticate(proof, refused) {
  const answer = await withAccessToken(AUTH_URL, '/auth/reauthenticate', { method: 'POST', json: proof });
  if (answer.status === 200) {
    settleStepUp(answer.body.access_token);
    return;
  }
  // A code, once accepted or refused, is no use again.
  $('step-up-code').value = '';
  $('step-up-recovery').value = '';
  throw new Failure(answer.status === 403 ? refused : `Not confirmed: ${describe(answer)}.`);
}

function showStepUpError(text) {
  const error = $('step-up-error');
  error.textContent = text;
  error.hidden = false;
}

function settleStepUp(token) {
  accessToken = token;
  const { resolve } = stepUpPrompt;
  closeStepUp();
  renderAssurance();
  resolve();
}

/** Closes the prompt, failing the calls that waited for it. */
function abandonStepUp() {
  const { reject } = stepUpPrompt;
  closeStepUp();
  if (reject) reject(new Abandoned());
}

function closeStepUp() {
  const dialog = $('step-up-dialog');
  if (dialog.open) dialog.close();
  $('step-up-password').value = '';
  $('step-up-code').value = '';
  $('step-up-recovery').value = '';
  $('step-up-error').hidden = true;
  Object.assign(stepUpPrompt, { resolve: null, reject: null });
}

function cancelStepUp() {
  abandonStepUp();
  showMessage('Cancelled: nothing was changed.');
}

$('step-up-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(submitStepUp);
});
$('step-up-switch').addEventListener('click', () => switchFactorField('step-up'));
$('step-up-passkey').addEventListener('click', () => act(stepUpWithPasskey));
$('step-up-cancel').addEventListener('click', cancelStepUp);
// Escape closes a modal dialog: the same as Cancel.
$('step-up-dialog').addEventListener('cancel', (event) => {
  event.preventDefault();
  cancelStepUp();
});

// ---------------------------------------------------------------- administration

// Where the admin page stands: the search, the next pages, the user shown.
const admin = { query: '', usersCursor: null, auditCursor: null, selected: null };

/**
 * The claims of the access token: its payload read, not verified. They only
 * decide what to show; the servers decide what the user may do.
 */
function tokenClaims() {
  try {
    const payload = accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)) || {};
  } catch {
    return {};
  }
}

function tokenRoles() {
  const { roles } = tokenClaims();
  return Array.isArray(roles) ? roles : [];
}

function hideAdmin() {
  $('admin-view').hidden = true;
  $('admin-user').hidden = true;
  $('admin-users').tBodies[0].replaceChildren();
  $('audit-events').replaceChildren();
  admin.selected = null;
}

/** The admin page, for an access token whose roles hold `admin`. */
async function loadAdmin() {
  if (!tokenRoles().includes('admin')) {
    hideAdmin();
    return;
  }
  $('admin-view').hidden = false;
  await Promise.all([loadUsers(false), loadAudit(false)]);
  if (admin.selected) await selectUser(admin.selected);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function userRow(user) {
  const row = document.createElement('tr');
  row.dataset.userId = user.id;
  row.dataset.email = user.email;
  row.dataset.disabled = String(user.disabled);
  row.setAttribute('aria-selected', String(user.id === admin.selected));
  row.append(
    cell(user.email),
    cell(user.roles.length ? user.roles.join(', ') : '—'),
    cell(user.disabled ? 'disabled' : 'enabled'),
    cell(user.last_login_at ? time(user.last_login_at) : 'never'),
  );
  row.addEventListener('click', () => act(() => selectUser(user.id)));
  return row;
}

/** A page of users matching the search; `more` appends the next page. */
async function loadUsers(more) {
  const params = new URLSearchParams({ limit: '20' });
  if (admin.query) params.set('query', admin.query);
  if (more && admin.usersCursor) params.set('cursor', admin.usersCursor);
  const answer = await authorized(AUTH_URL, `/admin/users?${params}`);
  if (answer.status !== 200) throw new Failure(`Listing users failed: ${describe(answer)}.`);
  const rows = answer.body.users.map(userRow);
  const body = $('admin-users').tBodies[0];
  if (more) body.append(...rows);
  else body.replaceChildren(...rows);
  admin.usersCursor = answer.body.next_cursor;
  $('admin-more').hidden = !admin.usersCursor;
}

/** One user: its state, roles and live sessions, with what can be done. */
async function selectUser(id) {
  const answer = await authorized(AUTH_URL, `/admin/users/${encodeURIComponent(id)}`);
  if (answer.status === 404) {
    admin.selected = null;
    $('admin-user').hidden = true;
    throw new Failure('That user no longer exists.');
  }
  if (answer.status !== 200) throw new Failure(`Reading the user failed: ${describe(answer)}.`);
  const user = answer.body;
  admin.selected = user.id;
  const panel = $('admin-user');
  panel.hidden = false;
  panel.dataset.userId = user.id;
  panel.dataset.disabled = String(user.disabled);
  $('admin-user-email').textContent = user.email;
  $('admin-user-id').textContent = user.id;
  $('admin-user-state').textContent = user.disabled ? 'disabled' : 'enabled';
  $('admin-roles').value = user.roles.join(', ');
  $('admin-disable').hidden = user.disabled;
  $('admin-enable').hidden = !user.disabled;
  const sessions = user.sessions.map((session) => {
    const item = document.createElement('li');
    item.dataset.sessionId = session.id;
    item.textContent = `since ${time(session.created_at)}, last used ${time(session.last_used_at)}`
      + ` · ${session.user_agent || 'unknown client'} · ${session.ip || 'unknown address'}`;
    return item;
  });
  if (!sessions.length) {
    const none = document.createElement('li');
    none.textContent = 'none';
    sessions.push(none);
  }
  $('admin-user-sessions').replaceChildren(...sessions);
  for (const row of $('admin-users').tBodies[0].rows) {
    row.setAttribute('aria-selected', String(row.dataset.userId === user.id));
  }
}

/** After a change: the list, the user (if still there) and the trail again. */
async function afterChange(message) {
  showMessage(message);
  await Promise.all([loadUsers(false), loadAudit(false)]);
  if (admin.selected) await selectUser(admin.selected);
}

async function setDisabled(disabled) {
  const id = admin.selected;
  const answer = await authorized(
    AUTH_URL,
    `/admin/users/${encodeURIComponent(id)}/${disabled ? 'disable' : 'enable'}`,
    { method: 'POST' },
  );
  if (answer.status !== 204) {
    throw new Failure(`${disabled ? 'Disabling' : 'Enabling'} failed: ${describe(answer)}.`);
  }
  await afterChange(disabled
    ? 'The user is disabled: every session ended, and logging in is refused.'
    : 'The user is enabled again.');
}

async function saveRoles() {
  const roles = $('admin-roles').value.split(',').map((r) => r.trim()).filter(Boolean);
  const answer = await authorized(AUTH_URL, `/admin/users/${encodeURIComponent(admin.selected)}/roles`, {
    method: 'PUT',
    json: { roles },
  });
  if (answer.status !== 200) throw new Failure(`The roles were not changed: ${describe(answer)}.`);
  await afterChange('Roles saved. Access tokens issued before are refused; the next refresh carries the new roles.');
}

async function deleteUser() {
  const email = $('admin-user-email').textContent;
  if (!window.confirm(`Delete ${email}? Its sessions end and the account is gone for good.`)) return;
  const answer = await authorized(AUTH_URL, `/admin/users/${encodeURIComponent(admin.selected)}`, {
    method: 'DELETE',
  });
  if (answer.status !== 204) throw new Failure(`The user was not deleted: ${describe(answer)}.`);
  admin.selected = null;
  $('admin-user').hidden = true;
  await afterChange(`${email} is deleted.`);
}

/** A page of the audit trail, newest first, with the filters applied. */
async function loadAudit(more) {
  const params = new URLSearchParams({ limit: '20' });
  const user = $('audit-user').value.trim();
  const type = $('audit-type').value;
  if (user) params.set('user_id', user);
  if (type) params.set('type', type);
  if (more && admin.auditCursor) params.set('cursor', admin.auditCursor);
  const answer = await authorized(AUTH_URL, `/admin/audit?${params}`);
  if (answer.status !== 200) throw new Failure(`Reading the audit trail failed: ${describe(answer)}.`);
  const items = answer.body.events.map((event) => {
    const item = document.createElement('li');
    item.dataset.type = event.type;
    item.dataset.userId = event.user_id || '';
    const what = document.createElement('strong');
    what.textContent = EVENT_NAMES[event.type] || event.type;
    const details = document.createElement('small');
    details.textContent = ` ${time(event.at)} · user ${event.user_id || '—'}`
      + ` · by ${event.actor_id || 'the server or the CLI'} · ${event.ip || 'unknown address'}`;
    item.append(what, details);
    return item;
  });
  if (more) $('audit-events').append(...items);
  else $('audit-events').replaceChildren(...items);
  admin.auditCursor = answer.body.next_cursor;
  $('audit-more').hidden = !admin.auditCursor;
}

$('audit-type').append(...Object.keys(EVENT_NAMES).map((type) => {
  const option = document.createElement('option');
  option.value = type;
  option.textContent = type;
  return option;
}));
$('admin-search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  admin.query = $('admin-query').value.trim();
  act(() => loadUsers(false));
});
$('admin-more').addEventListener('click', () => act(() => loadUsers(true)));
$('admin-disable').addEventListener('click', () => act(() => setDisabled(true)));
$('admin-enable').addEventListener('click', () => act(() => setDisabled(false)));
$('admin-delete').addEventListener('click', () => act(deleteUser));
$('admin-roles-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(saveRoles);
});
$('audit-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(() => loadAudit(false));
});
$('audit-more').addEventListener('click', () => act(() => loadAudit(true)));

// ---------------------------------------------------------------- actions

/** Runs a user action, turning its failure into a message. */
async function act(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof Abandoned) return;
    if (error instanceof SessionEnded) {
      showLoggedOut(
        'Your session has ended: it was logged out (here or in another tab), revoked, '
          + 'or it expired. Log in again to continue.',
        'error',
      );
    } else if (error instanceof Failure) {
      showMessage(error.message, 'error');
    } else {
      showMessage('Something went wrong; see the browser console.', 'error');
      console.error(error);
    }
  }
}

function credentials() {
  return { email: $('email').value, password: $('password').value };
}

async function logIn() {
  const answer = await send(AUTH_URL, '/auth/login', { method: 'POST', json: credentials() });
  if (answer.status === 403 && answer.body && answer.body.error === 'mfa_required') {
    showSecondStep(answer.body);
    return;
  }
  if (answer.status !== 200) throw new Failure(`Login failed: ${describe(answer)}.`);
  await enter(answer.body.access_token);
}

/** A passkey alone: login/start, the device picks one of its passkeys, login/finish. */
async function logInWithPasskey() {
  const start = await send(AUTH_URL, '/auth/passkeys/login/start', { method: 'POST', json: {} });
  if (start.status !== 200) throw new Failure(`Passkey sign-in did not start: ${describe(start)}.`);
  const credential = await usePasskey(start.body.options);
  const answer = await send(AUTH_URL, '/auth/passkeys/login/finish', {
    method: 'POST',
    json: { challenge_id: start.body.challenge_id, credential },
  });
  if (answer.status === 401) throw new Failure('This server does not know that passkey. Log in with your password.');
  if (answer.status !== 200) throw new Failure(`Passkey sign-in failed: ${describe(answer)}.`);
  $('password').value = '';
  await enter(answer.body.access_token);
}

/** A login's access token in hand: the logged-in page. */
async function enter(token) {
  accessToken = token;
  showMessage('');
  await showLoggedIn();
}

// The login waiting for its second factor: the auth server's `mfa_token`
// (it dies after a few minutes or a few wrong codes).
let pendingLogin = null;

function showSecondStep({ mfa_token: token, methods = [] }) {
  pendingLogin = { token };
  $('password').value = '';
  const totp = methods.includes('totp');
  const passkey = methods.includes('passkey') && passkeysSupported();
  showFactorField('mfa', totp ? 'code' : 'recovery', totp && methods.includes('recovery_code'));
  $('mfa-passkey-choice').hidden = !passkey;
  $('login-view').hidden = true;
  $('mfa-view').hidden = false;
  showMessage('');
  if (passkey) $('mfa-passkey').focus();
  else $(totp ? 'mfa-code' : 'mfa-recovery').focus();
}

function hideSecondStep() {
  pendingLogin = null;
  $('mfa-view').hidden = true;
  $('mfa-passkey-choice').hidden = true;
  $('mfa-code').value = '';
  $('mfa-recovery').value = '';
}

/** Back to the password form, after a dead `mfa_token` or on request. */
function backToPassword(text = '', kind = 'info') {
  hideSecondStep();
  $('login-view').hidden = false;
  showMessage(text, kind);
}

const LOGIN_EXPIRED = 'This login took too long or had too many wrong codes: enter your password again.';

async function finishLogin() {
  if (!pendingLogin || !$('mfa-form').reportValidity()) return;
  await submitSecondFactor(factorProof('mfa'), 'That code is not right. Try again.');
}

/** The passkey as the second factor: login/mfa/passkey, the device, then login/mfa. */
async function finishLoginWithPasskey() {
  if (!pendingLogin) return;
  const start = await send(AUTH_URL, '/auth/login/mfa/passkey', {
    method: 'POST',
    json: { mfa_token: pendingLogin.token },
  });
  if (start.status === 401) {
    backToPassword(LOGIN_EXPIRED, 'error');
    return;
  }
  if (start.status !== 200) throw new Failure(`The passkey step did not start: ${describe(start)}.`);
  const credential = await usePasskey(start.body.options);
  const passkey = { challenge_id: start.body.challenge_id, credential };
  await submitSecondFactor({ passkey }, 'That passkey was refused. Try again.');
}

/** POST /auth/login/mfa: the second factor ends the login as a password alone would. */
async function submitSecondFactor(proof, refused) {
  if (!pendingLogin) return;
  const answer = await send(AUTH_URL, '/auth/login/mfa', {
    method: 'POST',
    json: { mfa_token: pendingLogin.token, ...proof },
  });
  if (answer.status === 200) {
    hideSecondStep();
    await enter(answer.body.access_token);
    return;
  }
  $('mfa-code').value = '';
  $('mfa-recovery').value = '';
  if (answer.status === 401 && answer.body && answer.body.error === 'invalid_credentials') {
    throw new Failure(refused);
  }
  if (answer.status === 401) {
    backToPassword(LOGIN_EXPIRED, 'error');
    return;
  }
  throw new Failure(`Login failed: ${describe(answer)}.`);
}

async function register() {
  if (!$('login-form').reportValidity()) return;
  const answer = await send(AUTH_URL, '/auth/register', { method: 'POST', json: credentials() });
  if (answer.status !== 201) throw new Failure(`Registration failed: ${describe(answer)}.`);
  await logIn();
}

async function revokeSession(id) {
  const answer = await authorized(AUTH_URL, `/auth/sessions/${encodeURIComponent(id)}`, {
    method: 'DELETE',
  });
  if (answer.status !== 204) throw new Failure(`Revoking failed: ${describe(answer)}.`);
  await loadSessions();
}

async function logOut() {
  // Under the lock, so no tab is halfway through rotating the cookie.
  const answer = await withRefreshLock(() =>
    send(AUTH_URL, '/auth/logout', { method: 'POST' }));
  if (answer.status !== 204) throw new Failure(`Logout failed: ${describe(answer)}.`);
  showLoggedOut('You have logged out.');
}

async function logOutEverywhere() {
  const answer = await authorized(AUTH_URL, '/auth/logout-all', { method: 'POST' });
  if (answer.status !== 204) throw new Failure(`Logout failed: ${describe(answer)}.`);
  // The session is revoked already; this only makes the browser drop the
  // cookie now rather than at the next refused refresh.
  await withRefreshLock(() => send(AUTH_URL, '/auth/logout', { method: 'POST' }));
  showLoggedOut('You have logged out of every session, on every device.');
}

async function changePassword() {
  if (!$('change-form').reportValidity()) return;
  const answer = await authorized(AUTH_URL, '/auth/password', {
    method: 'POST',
    json: { current_password: $('current-password').value, new_password: $('new-password').value },
  });
  if (answer.status !== 204) throw new Failure(`The password was not changed: ${describe(answer)}.`);
  $('current-password').value = '';
  $('new-password').value = '';
  showMessage('Your password is changed. Your other sessions were logged out.');
  await reload();
}

async function forgotPassword() {
  const answer = await send(AUTH_URL, '/auth/password/forgot', {
    method: 'POST',
    json: { email: $('forgot-email').value },
  });
  if (answer.status !== 202) throw new Failure(`The request failed: ${describe(answer)}.`);
  showMessage('If an account has this address, a link to reset its password is on its way.');
}

async function resetPassword(token) {
  if (!$('reset-form').reportValidity()) return;
  const answer = await send(AUTH_URL, '/auth/password/reset', {
    method: 'POST',
    json: { token, new_password: $('reset-password').value },
  });
  $('reset-password').value = '';
  if (answer.status !== 204) {
    showLoggedOut(`The password was not reset: ${describe(answer)}. Ask for a new link.`, 'error');
    return;
  }
  showLoggedOut('Your password is reset, and every session logged out. Log in with the new one.');
}

async function verifyEmail(token) {
  const answer = await send(AUTH_URL, '/auth/email/verify', { method: 'POST', json: { token } });
  return answer.status === 204
    ? 'Your e-mail address is verified.'
    : `The address was not verified: ${describe(answer)}.`;
}

async function resendVerification() {
  const answer = await authorized(AUTH_URL, '/auth/email/verify/resend', { method: 'POST' });
  if (answer.status === 409) {
    $('verify-banner').hidden = true;
    return;
  }
  if (answer.status !== 202) throw new Failure(`The link was not sent: ${describe(answer)}.`);
  showMessage('A new link is on its way to your address.');
}

/** On page load: the cookie, if any, gives this tab its access token. */
async function restore() {
  showMessage('Restoring your session…');
  try {
    await refresh();
  } catch (error) {
    if (error instanceof SessionEnded) {
      showLoggedOut('Log in, or create an account.');
    } else {
      showLoggedOut(error.message, 'error');
    }
    return;
  }
  showMessage('');
  await act(showLoggedIn);
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(logIn);
});
$('register-button').addEventListener('click', () => act(register));
$('mfa-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(finishLogin);
});
$('mfa-switch').addEventListener('click', () => switchFactorField('mfa'));
$('mfa-passkey').addEventListener('click', () => act(finishLoginWithPasskey));
$('passkey-login-button').addEventListener('click', () => act(logInWithPasskey));
$('mfa-cancel').addEventListener('click', () => backToPassword());
$('reload-button').addEventListener('click', () => act(reload));
$('logout-button').addEventListener('click', () => act(logOut));
$('logout-all-button').addEventListener('click', () => act(logOutEverywhere));
$('change-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(changePassword);
});
$('forgot-form').addEventListener('submit', (event) => {
  event.preventDefault();
  act(forgotPassword);
});
$('resend-button').addEventListener('click', () => act(resendVerification));

// A link opened in a tab already showing the app changes only the fragment,
// which loads nothing: start again, so the link is read (and removed) as on
// a fresh load.
window.addEventListener('hashchange', () => {
  if (/^#(reset|verify)=/.test(window.location.hash)) window.location.reload();
});

/** The page's first move: an e-mail link's, else restoring the session. */
async function start() {
  if (emailLink && emailLink.kind === 'reset') {
    // A reset logs every session out: no point restoring one first.
    accessToken = null;
    $('login-view').hidden = true;
    $('app-view').hidden = true;
    $('reset-view').hidden = false;
    showMessage('');
    $('reset-form').addEventListener('submit', (event) => {
      event.preventDefault();
      act(() => resetPassword(emailLink.token));
    });
    return;
  }
  const verified = emailLink && emailLink.kind === 'verify' ? await verifyEmail(emailLink.token) : '';
  await restore();
  if (verified) showMessage(verified);
}

start();
