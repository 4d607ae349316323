// Where the services are. A deployment serves its own copy of this file; the
// page and both services must share one host name (all `localhost` here), or
// the SameSite=Strict refresh cookie is never sent.
window.APP_CONFIG = {
  authUrl: 'http://localhost:8080',
  apiUrl: 'http://localhost:8081',
};
