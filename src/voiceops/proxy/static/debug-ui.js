// The page's DOM: every write goes through here, into boxes whose size never changes.
"use strict";

import { meterPercent, SILENT_DB } from "./debug-audio.js";

export const $ = (id) => document.getElementById(id);
const MAX_LOG_LINES = 500;
const MAX_UTTERANCES = 200;

export const STATE_LABELS = {
  idle: "Not connected",
  connecting: "Connecting…",
  waiting: "Waiting for the agent",
  talking: "Talking",
  missing: "Agent missing",
  ended: "Agent left",
  error: "Error",
};

export function log(kind, text) {
  const box = $("log");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = new Date().toISOString().slice(11, 23) + "  " + text;
  box.appendChild(line);
  while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

export function showState(state) {
  const badge = $("state");
  badge.dataset.state = state;
  badge.textContent = STATE_LABELS[state];
}

// The explanation box: a title line and details (the diagnosis, the error, what happens now).
export function explain(kind, title, details) {
  const box = $("explain");
  box.className = "explain " + kind;
  box.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = title;
  box.append(strong, document.createTextNode(details || ""));
}

export function setStep(step, ms, late) {
  const row = document.querySelector(`#steps tr[data-step="${step}"]`);
  row.classList.add("done");
  row.classList.toggle("late", Boolean(late));
  row.querySelector("td").textContent = late ? "none" : ms.toLocaleString("en") + " ms";
}

export function clearSteps() {
  for (const row of document.querySelectorAll("#steps tr")) {
    row.classList.remove("done", "late");
    row.querySelector("td").textContent = "—";
  }
  $("turns").replaceChildren();
}

export function addTurn(n, responseMs) {
  const li = document.createElement("li");
  li.textContent = responseMs.toLocaleString("en") + " ms";
  $("turns").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

export function setMeter(which, db) {
  const pct = meterPercent(db);
  const bar = $(which + "-meter");
  bar.querySelector(".fill").style.transform = `scaleX(${pct / 100})`;
  bar.setAttribute("aria-valuenow", String(pct));
  $(which + "-db").textContent = db <= SILENT_DB ? "—" : Math.round(db) + " dB";
}

// One bubble per transcription segment, updated in place as interim text turns final.
export function upsertUtterance(id, who, text, final) {
  const box = $("transcript");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
  let el = box.querySelector(`[data-segment="${CSS.escape(id)}"]`);
  if (!el) {
    el = document.createElement("div");
    el.dataset.segment = id;
    el.className = "utt " + who;
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who === "user" ? "you (as the agent heard you)" : "agent";
    el.append(label, document.createElement("span"));
    box.appendChild(el);
    while (box.childElementCount > MAX_UTTERANCES) box.firstElementChild.remove();
  }
  el.lastElementChild.textContent = text;
  el.classList.toggle("interim", !final);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

export function keyHint(text, bad) {
  const hint = $("key-hint");
  hint.textContent = text || "\u00a0";
  hint.classList.toggle("bad", Boolean(bad));
  $("apikey").setAttribute("aria-invalid", bad ? "true" : "false");
}

export function fillAgents(agents) {
  const sel = $("agent");
  const keep = sel.value;
  sel.length = 1;
  for (const a of agents) {
    const opt = document.createElement("option");
    opt.value = a.id;
    opt.textContent = (a.name || a.id) + (a.description ? " — " + a.description : "");
    sel.appendChild(opt);
  }
  const ids = agents.map((a) => a.id);
  sel.value = ids.includes(keep) ? keep : (ids[0] || "");
}

export function setBusy(connected) {
  $("connect").disabled = connected;
  $("hangup").disabled = !connected;
  $("mute").disabled = !connected;
  for (const id of ["room", "identity", "agent", "reload"]) $(id).disabled = connected;
}
