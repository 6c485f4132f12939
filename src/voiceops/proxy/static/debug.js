// The debug page: join a room with the LiveKit JS SDK, dispatch a Letta agent, talk, and
// when no agent comes, show the diagnosis voiceops computed (GET /api/dispatches/{id}).
"use strict";

import { Api, needsKey } from "./debug-api.js";
import { LevelMeter, SILENT_DB, TurnTimer } from "./debug-audio.js";
import { agentAlreadyThere, wireRoom } from "./debug-room.js";
import * as ui from "./debug-ui.js";

const { $ } = ui;
const LK = window.LivekitClient;  // the vendored SDK, a classic script loaded before us
const POLL_MS = 1000;
const SAMPLE_MS = 50;
const FALLBACK_DEADLINE_S = 10;  // monitor.job_request_deadline_s's default
const NO_TIMELINE_GRACE_S = 5;
const RTP_CHECK_MS = 5000;

// The one transition table of the page; any other (state, input) pair changes nothing.
const TRANSITIONS = {
  idle: { connect: "connecting" },
  connecting: { dispatched: "waiting", agent_joined: "talking", failed: "error", hangup: "idle" },
  waiting: { agent_joined: "talking", diagnosed: "missing", failed: "error", hangup: "idle" },
  missing: { agent_joined: "talking", failed: "error", hangup: "idle" },
  talking: { agent_left: "ended", failed: "error", hangup: "idle" },
  ended: { agent_joined: "talking", failed: "error", hangup: "idle" },
  error: { connect: "connecting", hangup: "idle" },
};

const api = new Api(() => $("apikey").value.trim());
const page = { state: "idle", call: null, csp: [], errors: [] };

function input(name) {
  const next = TRANSITIONS[page.state][name];
  if (!next) return false;
  page.state = next;
  ui.showState(next);
  return true;
}

// Everything one Connect press owns; async steps check it is still the current call.
function newCall() {
  return {
    t0: performance.now(), room: null, audio: null, micMeter: null, agentMeter: null,
    agent: null, dispatchId: "", deadlineS: FALLBACK_DEADLINE_S, diagnosis: "",
    steps: {}, turns: [], transcripts: new Map(), timer: new TurnTimer(),
    peak: { mic: SILENT_DB, agent: SILENT_DB }, level: { mic: SILENT_DB, agent: SILENT_DB },
    agentState: "", hangingUp: false, connected: false, timers: [],
  };
}

const live = (call) => call === page.call && !call.hangingUp;
const sinceT0 = (call) => Math.round(performance.now() - call.t0);

function step(call, name, ms) {
  if (call.steps[name] !== undefined) return;
  call.steps[name] = ms;
  ui.setStep(name, ms);
  ui.log("info", `${name.replace("_", " ")} at +${ms} ms`);
}

function fail(call, title, details) {
  if (!live(call)) return;
  ui.log("err", title + ": " + details);
  page.errors.push(title + ": " + details);
  input("failed");
  ui.explain("error", title, details);
  teardown(call);
}

function failed(call, what, result) {
  if (needsKey(result)) {
    askForKey(result);
    return fail(call, what + " refused", "the proxy requires a valid API key (above)");
  }
  fail(call, what + " failed", `HTTP ${result.status} ${result.error.code}: ${result.error.message}`);
}

async function connect() {
  if (!LK || page.call) return;
  const call = newCall();
  page.call = call;
  const roomName = $("room").value.trim();
  input("connect");
  ui.clearSteps();
  $("transcript").replaceChildren();
  ui.setBusy(true);
  $("hangup").focus();
  ui.explain("connecting", "Connecting…", ` Minting a token and joining room ${roomName}.`);
  call.audio = new AudioContext();  // created in the click: allowed to play
  call.audio.resume().catch(() => {});
  call.timers.push(setInterval(() => sample(call), SAMPLE_MS));
  const tok = await api.token(roomName, $("identity").value.trim());
  if (!live(call)) return;
  if (!tok.ok) return failed(call, "token", tok);
  step(call, "token", sinceT0(call));
  if (!(await join(call, tok.data))) return;
  const d = await api.dispatch(roomName, $("agent").value);
  if (!live(call)) return;
  if (!d.ok) return failed(call, "dispatch", d);
  dispatched(call, d.data);
  try {
    await call.room.localParticipant.setMicrophoneEnabled(true);
  } catch (e) {
    ui.log("err", "microphone: " + e.message + " (the agent cannot hear you)");
  }
}

async function join(call, token) {
  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  call.room = room;
  wireRoom(LK, room, roomHandlers(call));
  try {
    await room.connect(token.url, token.token);
  } catch (e) {
    fail(call, "Could not connect to LiveKit", ` ${token.url}: ${e.message}`);
    return false;
  }
  if (!live(call)) return false;
  call.connected = true;
  step(call, "connected", sinceT0(call));
  const present = agentAlreadyThere(room);
  if (present) agentJoined(call, present);
  return true;
}

function dispatched(call, d) {
  step(call, "dispatched", sinceT0(call));
  call.dispatchId = d.dispatch_id;
  ui.log("ok", `${d.reused ? "reused dispatch" : "dispatched"} ${d.dispatch_id} of ` +
         `'${d.agent_name}' (${d.room_existed ? "room existed" : "new room"})`);
  if (input("dispatched")) {
    ui.explain("waiting", "Waiting for the agent…", ` LiveKit should send a JobRequest to a ` +
               `worker registered as '${d.agent_name}', whose agent then joins this room.`);
  }
  if (!d.reused) poll(call);
  call.timers.push(setTimeout(() => noTimeline(call),
                              (FALLBACK_DEADLINE_S + NO_TIMELINE_GRACE_S) * 1000));
}

// Follow voiceops' own timeline of the dispatch until the agent joined or a diagnosis came.
async function poll(call) {
  if (!live(call)) return;
  const r = await api.timeline(call.dispatchId);
  if (!live(call)) return;
  if (!r.ok) {
    call.timelineError = `HTTP ${r.status} ${r.error.code}: ${r.error.message}`;
    ui.log("warn", "dispatch timeline: " + call.timelineError);
    if (r.status !== 429 && r.status < 500) return;  // unknown dispatch: nothing more to learn
  } else if (!timelineSays(call, r.data)) {
    return;
  }
  call.timers.push(setTimeout(() => poll(call), POLL_MS));
}

// Apply one timeline answer; true while there is more to wait for.
function timelineSays(call, tl) {
  if (typeof tl.deadline_s === "number") call.deadlineS = tl.deadline_s;
  if (tl.job_request_after_s !== null && call.steps.dispatched !== undefined) {
    step(call, "job_request", call.steps.dispatched + Math.round(tl.job_request_after_s * 1000));
  }
  if (tl.diagnosis) {
    missing(call, tl.diagnosis);
    return false;
  }
  return tl.joined_after_s === null || call.steps.job_request === undefined;
}

function missing(call, diagnosis) {
  call.diagnosis = diagnosis;
  if (!input("diagnosed")) return;
  step(call, "diagnosed", sinceT0(call));
  if (call.steps.job_request === undefined) ui.setStep("job_request", 0, true);
  ui.setStep("agent_joined", 0, true);
  ui.log("err", "no agent: " + diagnosis);
  ui.explain("missing", "No agent came. voiceops says:", " " + diagnosis);
}

function noTimeline(call) {
  if (!live(call) || page.state !== "waiting" || !call.timelineError) return;
  const waited = FALLBACK_DEADLINE_S + NO_TIMELINE_GRACE_S;
  missing(call, `no agent joined within ${waited} s, and voiceops' timeline of the dispatch is ` +
          `not available (${call.timelineError}); see \`voiceops status\` for alerts`);
}

function agentJoined(call, p) {
  if (!live(call)) return;
  call.agent = p;
  step(call, "agent_joined", sinceT0(call));
  $("agent-presence").textContent = "in the room (" + p.identity + ")";
  input("agent_joined");
  ui.explain("talking", "The agent is in the room.", " Speak: your words and its answers " +
             "appear under Conversation, with the response time of each turn in the timeline.");
  const state = p.attributes && p.attributes["lk.agent.state"];
  if (state) agentState(call, state);
}

function agentState(call, value) {
  call.agentState = value;
  $("agent-state").textContent = value;
}

function roomHandlers(call) {
  return {
    agentJoined: (p) => agentJoined(call, p),
    agentLeft: (p) => {
      if (!live(call) || call.agent !== p) return;
      $("agent-presence").textContent = "left the room";
      if (input("agent_left")) ui.explain("ended", "The agent left the room.", " Hang up and " +
                                          "connect again to call it back.");
    },
    agentAudio: (track) => {
      if (!live(call)) return;
      if (call.agentMeter) call.agentMeter.close();
      call.agentMeter = new LevelMeter(call.audio, track.mediaStreamTrack);
      call.agentMeter.track = track;
      call.timers.push(setTimeout(() => checkAgentRtp(call, track), RTP_CHECK_MS));
    },
    agentAudioGone: (track) => {
      if (call.agentMeter && call.agentMeter.track === track) {
        call.agentMeter.close();
        call.agentMeter = null;
      }
    },
    micPublished: (track) => {
      if (!live(call)) return;
      call.micMeter = new LevelMeter(call.audio, track.mediaStreamTrack);
      ui.log("ok", "microphone on");
    },
    agentState: (value) => agentState(call, value),
    transcript: (id, who, text, final) => {
      call.transcripts.set(id, { who, text, final });
      ui.upsertUtterance(id, who, text, final);
    },
    disconnected: (reason) => {
      // Before the join completed, room.connect() rejects with the better message.
      if (call.connected) fail(call, "Disconnected from LiveKit", " " + reasonName(reason));
    },
    playbackBlocked: (blocked) => { $("start-audio").hidden = !blocked; },
    log: ui.log,
  };
}

// A few seconds after the agent's audio track arrived: did any of its packets? (No packets
// means the media path from LiveKit to this browser is broken, not the agent.)
async function checkAgentRtp(call, track) {
  if (!live(call)) return;
  const report = await track.getRTCStatsReport().catch(() => null);
  let rtp = null;
  if (report) report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") rtp = s; });
  call.agentRtp = rtp ? { packets: rtp.packetsReceived || 0, lost: rtp.packetsLost || 0,
                          energy: rtp.totalAudioEnergy || 0 } : { packets: 0, lost: 0, energy: 0 };
  const r = call.agentRtp;
  if (r.packets === 0) {
    ui.log("err", `agent audio: no RTP packets reached this browser in ${RTP_CHECK_MS / 1000} s ` +
           "(the media path from LiveKit to the browser fails)");
  } else {
    ui.log("info", `agent audio: ${r.packets} RTP packets, ${r.lost} lost, in the first ` +
           `${RTP_CHECK_MS / 1000} s`);
  }
}

function reasonName(reason) {
  const name = LK.DisconnectReason[reason];
  return name ? `${name} (${reason})` : `reason ${reason}`;
}

function sample(call) {
  if (!live(call)) return;
  const t = sinceT0(call);
  for (const which of ["mic", "agent"]) {
    const meter = which === "mic" ? call.micMeter : call.agentMeter;
    const db = meter ? meter.levelDb() : SILENT_DB;
    call.level[which] = db;
    call.peak[which] = Math.max(call.peak[which], db);
    ui.setMeter(which, db);
  }
  for (const ev of call.timer.feed(t, call.level.mic, call.level.agent)) {
    if (ev.type === "first_agent_audio") step(call, "first_audio", ev.t);
    if (ev.type === "turn") {
      call.turns.push(ev.responseMs);
      ui.addTurn(call.turns.length, ev.responseMs);
      ui.log("info", `turn ${call.turns.length}: voice response ${ev.responseMs} ms`);
    }
  }
}

function teardown(call) {
  call.hangingUp = true;
  for (const t of call.timers) { clearInterval(t); clearTimeout(t); }
  for (const m of [call.micMeter, call.agentMeter]) if (m) m.close();
  if (call.room) call.room.disconnect();
  if (call.audio) call.audio.close().catch(() => {});
  $("audio-out").replaceChildren();
  ui.setMeter("mic", SILENT_DB);
  ui.setMeter("agent", SILENT_DB);
  $("agent-presence").textContent = "not in the room";
  $("agent-state").textContent = "—";
  ui.setBusy(false);
  page.call = null;
}

function hangup() {
  const call = page.call;
  if (!call) return;
  teardown(call);
  input("hangup");
  ui.log("info", "hung up");
  ui.explain("idle", "Hung up.", " Press Connect to call again (a new room keeps old " +
             "dispatches out of the way).");
  $("room").value = randomName("debug");
  $("connect").focus();
}

async function toggleMute() {
  const call = page.call;
  if (!call || !call.room) return;
  const lp = call.room.localParticipant;
  const muted = lp.isMicrophoneEnabled;
  await lp.setMicrophoneEnabled(!muted);
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute microphone" : "Mute microphone";
}

function askForKey(result) {
  ui.keyHint(result.status === 401 ? "This proxy requires an API key: enter it here."
                                   : "That API key is not valid: check it and try again.", true);
  $("apikey").focus();
}

async function loadAgents() {
  const r = await api.agents();
  if (!r.ok) {
    if (needsKey(r)) {
      askForKey(r);
      ui.log("warn", "GET /api/agents: " + r.error.message);
    } else {
      ui.log("err", `GET /api/agents -> ${r.status} ${r.error.code}: ${r.error.message}`);
    }
    return;
  }
  ui.keyHint($("apikey").value ? "Key accepted." : "", false);
  ui.fillAgents(r.data.agents);
  ui.log("info", `${r.data.agents.length} Letta agent(s) (${r.ms} ms)`);
}

function randomName(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return prefix + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function snapshot() {
  const call = page.call;
  return {
    state: page.state, sdk: LK ? LK.version : null, csp: page.csp.slice(), errors: page.errors.slice(),
    steps: call ? { ...call.steps } : {}, turns: call ? call.turns.slice() : [],
    transcripts: call ? Array.from(call.transcripts.values()) : [],
    level: call ? { ...call.level } : {}, peak: call ? { ...call.peak } : {},
    agentState: call ? call.agentState : "", diagnosis: call ? call.diagnosis : "",
    dispatchId: call ? call.dispatchId : "", agentRtp: call ? call.agentRtp || null : null,
    audioElements: document.querySelectorAll("#audio-out audio").length,
  };
}

function start() {
  document.addEventListener("securitypolicyviolation", (e) => {
    page.csp.push(e.violatedDirective + " " + e.blockedURI);
    ui.log("err", "blocked by the Content-Security-Policy: " + e.violatedDirective + " " + e.blockedURI);
  });
  $("room").value = randomName("debug");
  $("identity").value = randomName("debug-user");
  $("key-form").addEventListener("submit", (e) => { e.preventDefault(); loadAgents(); });
  $("call-form").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  $("reload").addEventListener("click", loadAgents);
  $("hangup").addEventListener("click", hangup);
  $("mute").addEventListener("click", toggleMute);
  $("clear").addEventListener("click", () => $("log").replaceChildren());
  $("start-audio").addEventListener("click", () => page.call && page.call.room.startAudio());
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") hangup(); });
  window.voiceopsDebug = Object.freeze({ snapshot });
  if (!LK) {
    $("connect").disabled = true;
    ui.explain("error", "The LiveKit JS SDK is not installed.", " Run `npm ci` in the voiceops " +
               "checkout (`make run` does it) and reload. Until then this page can list agents " +
               "but cannot join a room.");
  } else {
    ui.log("info", "livekit-client " + LK.version + " loaded from this proxy");
  }
  loadAgents();
}

start();
