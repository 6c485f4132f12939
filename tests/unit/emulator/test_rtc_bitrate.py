"""The emulator builds aiortc's bitrate estimator on a video receiver's first packet."""

from __future__ import annotations

from types import SimpleNamespace

import aiortc.rtcrtpreceiver as receiver_module
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from voiceops.emulator import rtc_bitrate

ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"


def _packets() -> list[dict[str, int]]:
    """1 s of 30 fps video, 1,200-byte packets, abs-send-time 6.18 fixed point, 2 ms jitter."""
    return [{"arrival_time_ms": 1000 + 33 * i + (i % 3) * 2,
             "abs_send_time": ((33 * i << 18) // 1000) & 0xFFFFFF,
             "payload_size": 1200, "ssrc": 1234} for i in range(300)]


def test_lazy_estimator_answers_as_the_real_one() -> None:
    """Same packets, same REMB answers: laziness changes when it is built, not what it says."""
    lazy, real = rtc_bitrate.LazyBitrateEstimator(), RemoteBitrateEstimator()
    lazy_answers = [lazy.add(**p) for p in _packets()]
    assert lazy_answers == [real.add(**p) for p in _packets()]
    assert any(a is not None for a in lazy_answers)  # the sequence does produce an estimate


def test_installed_receivers_build_no_estimator_until_a_packet() -> None:
    """After install() (idempotent), a video receiver holds the lazy stand-in, which has not
    allocated the real estimator's 1,000 rate buckets; audio receivers have none, as before."""
    rtc_bitrate.install()
    rtc_bitrate.install()
    assert vars(receiver_module)["RemoteBitrateEstimator"] is rtc_bitrate.LazyBitrateEstimator
    transport = SimpleNamespace(state="new")  # the receiver only checks it is not closed
    video = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    estimator = getattr(video, ESTIMATOR)
    assert isinstance(estimator, rtc_bitrate.LazyBitrateEstimator) and estimator._real is None
    assert getattr(RTCRtpReceiver("audio", transport), ESTIMATOR) is None  # type: ignore[arg-type]
