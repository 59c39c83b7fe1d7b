// The staff check-in page (docs/events.md). The code field is what must work: a code scanned
// by any QR reader app, pasted or typed goes to POST /events/{id}/checkin with the staff
// token. Where the browser has a BarcodeDetector, the camera only fills that same field.
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

  function when(iso) {
    return new Date(iso).toLocaleString(door.dataset.lang === "en" ? "en-GB" : "nb-NO");
  }

  async function checkIn(code) {
    const token = tokenInput.value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    let answer;
    try {
      answer = await fetch(`/events/${eventId}/checkin`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ code }),
      });
    } catch (err) {
      show("refused", door.dataset.refused, String(err));
      return;
    }
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
