// The staff check-in page (docs/events.md). The code field is what must work: a code scanned
// by any QR reader app, pasted or typed goes to POST /events/{id}/checkin with the staff
// token. Where the browser has a BarcodeDetector, the camera only fills that same field.
// Offline mode: the page keeps the public keys and the event's signed revocation list
// (re-synced every minute); when the service cannot be reached it checks the code's
// Ed25519 signature with WebCrypto against them, and redeems what it let in once back online.
"use strict";
(() => {
  const door = document.getElementById("door");
  const eventId = door.dataset.event;
  const form = document.getElementById("checkin-form");
  const tokenInput = document.getElementById("staff-token");
  const codeInput = document.getElementById("code");
  const result = document.getElementById("result");
  const TOKEN_KEY = "usn-checkin-token";

  // The token may come in the fragment (#token=…: never sent to a server, never in a log);
  // it is kept for this tab only.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";

  function show(kind, heading, detail, firstAt) {
    result.className = kind;
    result.dataset.outcome = kind;
    result.dataset.firstAt = firstAt || "";
    result.textContent = "";
    const strong = document.createElement("strong");
    strong.textContent = heading;
    result.append(strong);
    if (detail) result.append(document.createElement("br"), detail);
  }

  // ---- offline: keys, the signed revocation list, codes let in while offline ----
  const CODE_LABEL = new TextEncoder().encode("usn-alumni/events/checkin-code/v1\0");
  const LIST_LABEL = new TextEncoder().encode("usn-alumni/events/revocation-list/v1\0");
  const store = (name) => `usn-checkin-${name}-${eventId}`;
  const load = (name, fallback) => JSON.parse(localStorage.getItem(store(name)) || JSON.stringify(fallback));
  const save = (name, value) => localStorage.setItem(store(name), JSON.stringify(value));

  function unb64(text) {
    const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  }

  function uuidOf(bytes) {
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  async function verified(jwks, kid, label, data, signature) {
    const jwk = (jwks.keys || []).find((k) => k.kid === kid && k.crv === "Ed25519");
    if (!jwk) return false;
    const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
    const signed = new Uint8Array(label.length + data.length);
    signed.set(label);
    signed.set(data, label.length);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, signed);
  }

  async function sync() {
    const token = tokenInput.value.trim();
    if (!token) return;
    try {
      const jwks = await (await fetch("/checkin/keys")).json();
      const answer = await fetch(`/events/${eventId}/checkin/revocations`, { headers: { Authorization: `Bearer ${token}` } });
      if (!answer.ok) return;
      const signedList = await answer.json();
      const data = unb64(signedList.payload);
      if (!(await verified(jwks, signedList.kid, LIST_LABEL, data, unb64(signedList.signature)))) return;
      const list = JSON.parse(new TextDecoder().decode(data));
      const held = load("list", null);
      if (list.event_id !== eventId || (held && held.version > list.version)) return;
      save("keys", jwks);
      save("list", list);
      door.dataset.listVersion = String(list.version);
      // What was let in offline is redeemed now (idempotent); a code the service cannot be
      // reached for stays queued, one it answered (checked in, or refused) is done.
      const left = [];
      for (const code of load("pending", [])) {
        try { await redeemOnline(code, token); } catch (err) { left.push(code); }
      }
      save("pending", left);
    } catch (err) {
      // No network: keep what was synced last.
    }
  }

  async function redeemOnline(code, token) {
    const answer = await fetch(`/events/${eventId}/checkin`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ code }),
    });
    return answer;
  }

  async function checkOffline(code) {
    const keys = load("keys", null), list = load("list", null);
    if (!keys || !list) return ["refused", "no revocation list synced"];
    let raw;
    try { raw = unb64(code); } catch (err) { return ["refused", "not a check-in code"]; }
    const kidEnd = 2 + (raw[1] || 0);
    if (raw[0] !== 1 || raw.length !== kidEnd + 32 + 64) return ["refused", "not a check-in code"];
    const kid = new TextDecoder().decode(raw.slice(2, kidEnd));
    const body = raw.slice(0, raw.length - 64);
    if (!(await verified(keys, kid, CODE_LABEL, body, raw.slice(raw.length - 64)))) {
      return ["refused", "forged or altered code (bad signature)"];
    }
    const registration = uuidOf(raw.slice(kidEnd + 16, kidEnd + 32));
    if (uuidOf(raw.slice(kidEnd, kidEnd + 16)) !== eventId) return ["refused", "the code is for another event"];
    if (list.event_status === "cancelled") return ["refused", "the event is cancelled"];
    if (list.revoked.includes(registration)) return ["refused", "the registration was cancelled (revoked)"];
    const seen = load("seen", {});
    if (seen[registration]) return ["again", seen[registration]];
    seen[registration] = new Date().toISOString();
    save("seen", seen);
    save("pending", [...load("pending", []), code]);
    return ["ok", seen[registration]];
  }

  async function offline(code) {
    const [kind, detail] = await checkOffline(code);
    const note = door.dataset.offline;
    if (kind === "ok") show("ok", door.dataset.ok, note, detail);
    else if (kind === "again") show("again", door.dataset.again, `${door.dataset.againAt} ${when(detail)} (${note})`, detail);
    else show("refused", door.dataset.refused, `${detail} (${note})`);
    result.dataset.mode = "offline";
  }

  function when(iso) {
    return new Date(iso).toLocaleString(door.dataset.lang === "en" ? "en-GB" : "nb-NO");
  }

  async function checkIn(code) {
    const token = tokenInput.value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    let answer;
    try {
      answer = await redeemOnline(code, token);
    } catch (err) {
      await offline(code);  // the service cannot be reached: the door goes on offline
      codeInput.value = "";
      codeInput.focus();
      return;
    }
    result.dataset.mode = "online";
    const body = await answer.json().catch(() => ({}));
    if (answer.ok && body.first_use) {
      show("ok", door.dataset.ok, "", body.checked_in_at);
    } else if (answer.ok) {
      show("again", door.dataset.again, `${door.dataset.againAt} ${when(body.checked_in_at)}`, body.checked_in_at);
    } else {
      const detail = typeof body.detail === "string" ? body.detail : `HTTP ${answer.status}`;
      show("refused", `${door.dataset.refused} (${answer.status})`, detail);
    }
    codeInput.value = "";
    codeInput.focus();
  }

  sync();
  setInterval(sync, 60000);
  tokenInput.addEventListener("change", sync);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const code = codeInput.value.trim();
    if (code) checkIn(code);
  });

  // Camera: only where the browser can read QR codes itself (no library downloaded).
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    const scan = document.getElementById("scan");
    const video = document.getElementById("camera");
    scan.hidden = false;
    scan.addEventListener("click", async () => {
      const detector = new BarcodeDetector({ formats: ["qr_code"] });
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const stop = () => { stream.getTracks().forEach((t) => t.stop()); video.hidden = true; };
      const look = async () => {
        const found = await detector.detect(video).catch(() => []);
        if (found.length) {
          stop();
          codeInput.value = found[0].rawValue;
          checkIn(found[0].rawValue);
        } else {
          setTimeout(look, 250);
        }
      };
      look();
    });
  }
})();
