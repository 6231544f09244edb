"""The programs of an MPEG transport stream, from its PAT and PMT tables.

A broadcast or DVR recording can multiplex several programs (channels), each with its
own video and audio. FFmpeg knows which stream belongs to which program, but PyAV does
not expose it, so the tables are read here from the start of the file (ISO/IEC 13818-1
§2.4.4: the PAT on PID 0 names each program's PMT PID; each PMT lists the PIDs of its
elementary streams, which PyAV gives as `stream.id`).
"""
from __future__ import annotations

from pathlib import Path

PACKET = 188
SYNC = 0x47
SCAN_BYTES = 4 << 20  # the tables repeat every few hundred ms; 4 MB holds them many times


def programs(path: str | Path) -> dict[int, set[int]]:
    """{program number: PIDs of its elementary streams} of a .ts / .m2ts file; empty
    when the file is not a transport stream or its tables are not found early on."""
    try:
        with open(path, "rb") as f:
            data = f.read(SCAN_BYTES)
    except OSError:
        return {}
    offset, size = _layout(data)
    if size == 0:
        return {}
    pmt_pids: dict[int, int] = {}  # PMT PID -> program number
    found: dict[int, set[int]] = {}
    for start in range(offset, len(data) - PACKET + 1, size):
        packet = data[start : start + PACKET]
        if packet[0] != SYNC or not packet[1] & 0x40:  # only sections that start in this packet
            continue
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        section = _section(packet)
        if section is None:
            continue
        if pid == 0 and section[0] == 0x00:
            pmt_pids.update(_pat(section))
        elif pid in pmt_pids and section[0] == 0x02:
            number, streams = _pmt(section)
            found.setdefault(number, set()).update(streams)
        if pmt_pids and set(pmt_pids.values()) <= set(found):
            break
    return found


def _layout(data: bytes) -> tuple[int, int]:
    """(first sync byte, packet stride): 188-byte TS, or 192-byte M2TS (4-byte time prefix)."""
    for offset, size in ((0, PACKET), (4, PACKET + 4)):
        if len(data) >= offset + 3 * size and all(data[offset + k * size] == SYNC for k in range(3)):
            return offset, size
    return 0, 0


def _section(packet: bytes) -> bytes | None:
    """The PSI section that starts in a packet's payload (after the pointer field)."""
    control = packet[3] >> 4 & 3
    at = 4
    if control in (2, 3):
        at += 1 + packet[4]
    if control not in (1, 3) or at >= PACKET:
        return None
    at += 1 + packet[at]  # the pointer field
    if at + 3 > PACKET:
        return None
    length = (packet[at + 1] & 0x0F) << 8 | packet[at + 2]
    return packet[at : at + 3 + length]


def _pat(section: bytes) -> dict[int, int]:
    """{PMT PID: program number} from a program association section."""
    end = len(section) - 4  # the CRC
    out = {}
    for at in range(8, end - 3, 4):
        number = section[at] << 8 | section[at + 1]
        if number:  # program 0 names the network information table
            out[(section[at + 2] & 0x1F) << 8 | section[at + 3]] = number
    return out


def _pmt(section: bytes) -> tuple[int, set[int]]:
    """(program number, elementary stream PIDs) from a program map section."""
    number = section[3] << 8 | section[4]
    at = 12 + ((section[10] & 0x0F) << 8 | section[11])
    end = len(section) - 4
    pids = set()
    while at + 5 <= end:
        pids.add((section[at + 1] & 0x1F) << 8 | section[at + 2])
        at += 5 + ((section[at + 3] & 0x0F) << 8 | section[at + 4])
    return number, pids
