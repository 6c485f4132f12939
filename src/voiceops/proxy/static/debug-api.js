// The proxy's JSON API as the page uses it: every call answers {ok, status, data, ms, error}
// and never throws, so the caller decides what a failure means for the call in progress.
"use strict";

export class Api {
  constructor(keyProvider) {
    this.keyProvider = keyProvider;
  }

  async call(method, path, body) {
    const headers = {};
    const key = this.keyProvider();
    if (key) headers.Authorization = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const started = performance.now();
    let resp;
    let data = {};
    try {
      resp = await fetch(path, {
        method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      data = await resp.json().catch(() => ({}));
    } catch (e) {
      return { ok: false, status: 0, data, ms: elapsed(started),
               error: { code: "network", message: "the proxy did not answer (" + e + ")" } };
    }
    const ms = elapsed(started);
    if (!resp.ok) {
      const err = (data && data.error) || {};
      return { ok: false, status: resp.status, data, ms,
               error: { code: err.code || "http_" + resp.status,
                        message: err.message || resp.statusText } };
    }
    return { ok: true, status: resp.status, data, ms, error: null };
  }

  agents() { return this.call("GET", "/api/agents"); }

  token(room, identity) { return this.call("POST", "/api/token", { room, identity }); }

  dispatch(room, agentId) {
    const body = { room };
    if (agentId) body.agent_id = agentId;
    return this.call("POST", "/api/dispatch-agent", body);
  }

  timeline(dispatchId) {
    return this.call("GET", "/api/dispatches/" + encodeURIComponent(dispatchId));
  }
}

function elapsed(started) {
  return Math.round(performance.now() - started);
}

// 401: no key given; 403 with code "forbidden": a key that is not valid.
export function needsKey(result) {
  return result.status === 401 || (result.status === 403 && result.error.code === "forbidden");
}
