// The LiveKit side of a call: room events turned into a few plain callbacks for debug.js.
// livekit-agents publishes transcripts as text streams on "lk.transcription" (and, for
// clients older than its stream protocol, as legacy transcription packets): both are read,
// keyed by segment id, so a segment seen twice is shown once.
"use strict";

const TRANSCRIPTION_TOPIC = "lk.transcription";
const SEGMENT_ATTR = "lk.segment_id";
const FINAL_ATTR = "lk.transcription_final";
export const AGENT_STATE_ATTR = "lk.agent.state";

export function isAgent(participant) {
  // LiveKit marks agent participants by kind; its agents are also named agent-<job id>.
  return Boolean(participant && (participant.isAgent || participant.identity.startsWith("agent-")));
}

// Text of one stream chunk: plain text, or JSON TimedString lines ({"text": ...}).
export function chunkText(chunk) {
  if (!chunk.trimStart().startsWith("{")) return chunk;
  let out = "";
  for (const line of chunk.split("\n")) {
    if (!line.trim()) continue;
    try {
      const parsed = JSON.parse(line);
      out += typeof parsed.text === "string" ? parsed.text : line;
    } catch (e) {
      out += line;
    }
  }
  return out;
}

// handlers: agentJoined(p), agentLeft(p), agentAudio(track) / agentAudioGone(track),
// micPublished(track), agentState(value), transcript(id, who, text, final),
// disconnected(reason), playbackBlocked(blocked), log(kind, text).
export function wireRoom(LK, room, h) {
  const E = LK.RoomEvent;
  const who = (identity) => (identity === room.localParticipant.identity ? "user" : "agent");
  room.on(E.ParticipantConnected, (p) => { if (isAgent(p)) h.agentJoined(p); });
  room.on(E.ParticipantDisconnected, (p) => { if (isAgent(p)) h.agentLeft(p); });
  room.on(E.TrackSubscribed, (track, pub, p) => {
    if (track.kind !== "audio") return;
    const el = track.attach();
    el.dataset.participant = p.identity;
    document.getElementById("audio-out").appendChild(el);
    if (isAgent(p)) h.agentAudio(track);
  });
  room.on(E.TrackUnsubscribed, (track) => {
    for (const el of track.detach()) el.remove();
    h.agentAudioGone(track);
  });
  room.on(E.LocalTrackPublished, (pub) => {
    if (pub.source === LK.Track.Source.Microphone && pub.track) h.micPublished(pub.track);
  });
  room.on(E.ParticipantAttributesChanged, (changed, p) => {
    if (isAgent(p) && AGENT_STATE_ATTR in changed) h.agentState(changed[AGENT_STATE_ATTR]);
  });
  room.on(E.TranscriptionReceived, (segments, p) => {
    for (const s of segments) h.transcript(s.id, who(p ? p.identity : ""), s.text, s.final);
  });
  room.on(E.Disconnected, (reason) => h.disconnected(reason));
  room.on(E.AudioPlaybackStatusChanged, () => h.playbackBlocked(!room.canPlaybackAudio));
  room.on(E.MediaDevicesError, (e) => h.log("err", "media device: " + e.message));
  room.registerTextStreamHandler(TRANSCRIPTION_TOPIC, (reader, info) => {
    readTranscript(reader, who(info.identity), h).catch(
      (e) => h.log("warn", "transcript stream broke off: " + e.message));
  });
}

export async function readTranscript(reader, speaker, h) {
  const attrs = reader.info.attributes || {};
  const id = attrs[SEGMENT_ATTR] || reader.info.id;
  let text = "";
  for await (const chunk of reader) {
    text += chunkText(chunk);
    h.transcript(id, speaker, text, false);
  }
  // The agent streams one segment as deltas and closes it when done; a user segment comes
  // as whole-text streams, the last one marked final in its header.
  const final = (reader.info.attributes || attrs)[FINAL_ATTR] === "true" || speaker === "agent";
  h.transcript(id, speaker, text, final);
}

// The participant already in the room when we arrive (a reused dispatch), if any.
export function agentAlreadyThere(room) {
  for (const p of room.remoteParticipants.values()) if (isAgent(p)) return p;
  return null;
}
