"""Reading a broker's socket in chunks: paho gets the same bytes, and aiomqtt's reader is
told to go on while bytes are buffered."""

from __future__ import annotations

import socket

import pytest

from genba.connectors._gather import _ChunkedSocket


def test_paho_reads_the_same_bytes_from_one_chunk() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    frames = [bytes([0x30, 5]) + b"t/1ab", bytes([0x30, 3]) + b"t/2"]
    b.sendall(b"".join(frames))
    chunked = _ChunkedSocket(a)
    got = []
    for _ in frames:  # as paho takes a packet: type, remaining length, the rest
        kind, length = chunked.recv(1), chunked.recv(1)
        got.append(kind + length + chunked.recv(length[0]))
        assert chunked.pending() == sum(map(len, frames)) - sum(map(len, got))
    assert got == frames
    with pytest.raises(BlockingIOError):  # nothing buffered, nothing on the socket
        chunked.recv(1)
    assert chunked.fileno() == a.fileno()  # everything else is the socket's
    b.close()
    assert chunked.recv(1) == b""  # the peer closed: paho's "connection lost"
    a.close()
