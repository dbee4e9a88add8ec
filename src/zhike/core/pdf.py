"""Reading PDFs from anyone (knowledge-base uploads, files handed to `zhike verify`) with pypdf's limits on."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


def pdf_limits(per_stream: int) -> AbstractContextManager[Any]:
    """pypdf's decompression limits for one reading: no stream inflates past `per_stream` bytes (PDF bombs), and
    no external program (jbig2dec) runs on a file from anyone."""
    from pypdf import apply_configuration

    return apply_configuration(  # type: ignore[no-any-return]
        zlib_maximum_output_length=per_stream,
        lzw_maximum_output_length=per_stream,
        run_length_maximum_output_length=per_stream,
        brotli_maximum_output_length=per_stream,
        jbig2_maximum_output_length=per_stream,
        array_based_stream_maximum_output_length=per_stream,
        maximum_declared_stream_length=per_stream,
        stream_decoding_work_maximum_length=4 * per_stream,
        jbig2dec_binary=None,
    )
