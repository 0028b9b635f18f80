// Account: change your password (the first-run password is meant to be changed), sign out.
import { graphql } from "./api.js";
import { html, useState } from "./ui.js";

const CHANGE = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { name } }";

export function AccountPage({ session, onSignOut }) {
  const [message, setMessage] = useState(null);
  async function change(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    if (form.get("newPassword") !== form.get("again")) { setMessage({ error: "the new passwords differ" }); return; }
    try {
      await graphql(CHANGE, { i: { currentPassword: form.get("currentPassword"), newPassword: form.get("newPassword") } });
      event.target.reset();
      setMessage({ ok: "Password changed. Your other sessions were signed out." });
    } catch (failure) {
      setMessage({ error: failure.message });
    }
  }
  return html`<article class="account">
    <header>Signed in as <strong>${session.user.name}</strong> (${session.user.role.toLowerCase()})</header>
    <form onSubmit=${change}>
      <label>Current password<input type="password" name="currentPassword" autocomplete="current-password" required /></label>
      <label>New password (10 characters or more)<input type="password" name="newPassword" autocomplete="new-password" minlength="10" required /></label>
      <label>New password again<input type="password" name="again" autocomplete="new-password" minlength="10" required /></label>
      ${message?.error && html`<p class="error" role="alert">${message.error}</p>`}
      ${message?.ok && html`<p class="ok">${message.ok}</p>`}
      <button type="submit">Change password</button>
    </form>
    <footer><button class="secondary outline" onClick=${onSignOut}>Sign out</button></footer>
  </article>`;
}
