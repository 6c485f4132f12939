// What the page hears: levels of the microphone and of the agent's track (WebAudio
// AnalyserNodes on the real MediaStreamTracks), and the voice response time of each turn.
"use strict";

export const SILENT_DB = -100;

// RMS level of one audio track in dBFS, read on demand.
export class LevelMeter {
  constructor(audioContext, mediaStreamTrack) {
    this.source = audioContext.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
    this.analyser = audioContext.createAnalyser();
    this.analyser.fftSize = 1024;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);  // not to the destination: the <audio> element plays it
  }

  levelDb() {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const x of this.buffer) sum += x * x;
    const rms = Math.sqrt(sum / this.buffer.length);
    return rms > 0 ? Math.max(SILENT_DB, 20 * Math.log10(rms)) : SILENT_DB;
  }

  close() {
    this.source.disconnect();
    this.analyser.disconnect();
  }
}

// Turns from two level streams: the user stops speaking, then the agent's audio starts.
// Pure: feed(tMs, micDb, agentDb) returns the events it saw; the caller owns the clock.
export class TurnTimer {
  constructor({ speechDb = -50, silenceMs = 600, minSpeechMs = 250 } = {}) {
    Object.assign(this, { speechDb, silenceMs, minSpeechMs });
    this.userSpeaking = false;
    this.userStart = 0;
    this.userLastLoud = 0;
    this.pendingEnd = null;  // when the user last stopped speaking, not yet answered
    this.agentActive = false;
    this.agentLastLoud = 0;
    this.firstAgentAudio = null;
  }

  feed(t, micDb, agentDb) {
    const events = [];
    this._user(t, micDb, events);
    this._agent(t, micDb, agentDb, events);
    return events;
  }

  _user(t, micDb, events) {
    if (micDb > this.speechDb) {
      if (!this.userSpeaking) {
        this.userSpeaking = true;
        this.userStart = t;
      }
      this.userLastLoud = t;
    } else if (this.userSpeaking && t - this.userLastLoud > this.silenceMs) {
      this._userStopped(events);
    }
  }

  _userStopped(events) {
    this.userSpeaking = false;
    if (this.userLastLoud - this.userStart >= this.minSpeechMs) {
      this.pendingEnd = this.userLastLoud;
      events.push({ type: "user_stopped", t: this.userLastLoud });
    }
  }

  _agent(t, micDb, agentDb, events) {
    if (agentDb <= this.speechDb) {
      if (this.agentActive && t - this.agentLastLoud > this.silenceMs) this.agentActive = false;
      return;
    }
    this.agentLastLoud = t;
    if (this.agentActive) return;
    this.agentActive = true;
    // An answer can start before our silence window closed: the user is quiet now, so the
    // turn ended at their last loud sample.
    if (this.userSpeaking && micDb <= this.speechDb) this._userStopped(events);
    events.push({ type: "agent_started", t });
    if (this.firstAgentAudio === null) {
      this.firstAgentAudio = t;
      events.push({ type: "first_agent_audio", t });
    }
    if (this.pendingEnd !== null) {
      events.push({ type: "turn", t, responseMs: Math.round(t - this.pendingEnd) });
      this.pendingEnd = null;
    }
  }
}

// A 0..100 meter position for a dBFS level (-70 dBFS and below read as empty).
export function meterPercent(db) {
  return Math.max(0, Math.min(100, Math.round(((db + 70) / 70) * 100)));
}
