"""Which files are audio/video (by their first bytes, before anything decodes them), and the mime type Zhike stores
a probed file as."""

from __future__ import annotations

from zhike.media.ffmpeg import MediaInfo

# ISO BMFF brands that are still images (HEIC, AVIF): an upload of those is an image, not a video
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def looks_like_media(head: bytes) -> bool:
    """True for WAV, MP3 (ID3 or an MPEG audio frame), AAC (ADTS), MP4/M4A/MOV, WebM/Matroska, Ogg, FLAC, AMR."""
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return True
    if head[:3] == b"ID3" or head[:4] in (b"OggS", b"fLaC", b"\x1a\x45\xdf\xa3") or head[:5] == b"#!AMR":
        return True
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    # An MPEG audio / ADTS frame sync: 11 set bits (a JPEG's FF D8 is not one)
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def stored_mime(info: MediaInfo) -> str | None:
    """The mime type a probed file is kept as when it is already in a stored format (WAV, MP3, M4A, MP4 with H.264/
    HEVC, WebM with VP8/VP9/AV1), else None (it needs converting: Ogg, FLAC, MOV, AVI, audio-only WebM...)."""
    names = set(info.format.split(","))
    video, audio = info.video, info.audio
    if "wav" in names and audio is not None and video is None:
        return "audio/wav"
    if "mp3" in names and audio is not None and video is None:
        return "audio/mpeg"
    if "mp4" in names or "m4a" in names:
        if video is None:
            return "audio/mp4" if audio is not None and audio.codec in ("aac", "mp3", "alac") else None
        return "video/mp4" if video.codec in ("h264", "hevc") else None
    if "webm" in names and video is not None and video.codec in ("vp8", "vp9", "av1"):
        return "video/webm"
    return None
