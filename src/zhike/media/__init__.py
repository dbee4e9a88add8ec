"""Audio and video without models: ffmpeg/ffprobe wrappers (probe, run with progress and cancel), input limits,
posters. Ops and backends render through these; provenance labels media files with them."""

from zhike.media.ffmpeg import MediaInfo, Stream, probe, run_ffmpeg
from zhike.media.limits import MediaLimits, check_input

__all__ = ["MediaInfo", "MediaLimits", "Stream", "check_input", "probe", "run_ffmpeg"]
