"use strict";
// The login page: the token goes to POST /v1/session, which answers with the cookie.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  const refused = document.getElementById("refused");
  refused.textContent = "";
  try {
    // the server answers with the session cookie (HttpOnly: no script reads it)
    const answer = await fetch("/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Auth-Token": token },
    });
    if (answer.ok) {
      location.assign("/");
    } else {
      refused.textContent = answer.status === 401 ? "token refused" : "the server answered " + answer.status;
    }
  } catch (error) {
    refused.textContent = "cannot reach the server: " + error;
  }
});
