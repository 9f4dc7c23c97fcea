"""Where a call's media can reach this process: ICE servers, a UDP port range, an advertised address.

A pool process behind a cluster's network cannot be reached on its pod address, so a deployment says
(settings `webrtc_*`):
- which UDP ports a call may bind (`webrtc_udp_ports = "40000-40099"`): only those need exposing
  (hostPort / a LoadBalancer). aioice binds ephemeral ports and has no option for a range (its issue #47
  is still open), so `use_port_range` swaps in a subclass of its `Connection` that binds host candidates
  inside the range; every other step of ICE is aioice's own.
- which address browsers should send to (`webrtc_advertise_address`, 1:1 NAT as pion and LiveKit call
  it): written into the answer's candidates in place of the pod's own address.
- ICE servers (a TURN relay for clients behind strict NATs). None by default: aiortc would otherwise
  query a public STUN server for every call.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket

import aioice
import aiortc.rtcicetransport
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aiortc import RTCIceServer


def parse_ice_servers(raw: str) -> list[RTCIceServer]:
    """`[{"urls": "turn:turn.example:3478", "username": "u", "credential": "p"}]` -> RTCIceServer list."""
    if not raw.strip():
        return []
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError("webrtc_ice_servers must be a JSON list of {urls, username, credential}")
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in data
    ]


def parse_port_range(raw: str | None) -> tuple[int, int] | None:
    """`"40000-40099"` -> (40000, 40099); None or "" -> None (ephemeral ports)."""
    if not raw:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", raw)
    if match is None:
        raise ValueError(f"webrtc_udp_ports must look like 40000-40099, not {raw!r}")
    low, high = int(match[1]), int(match[2])
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"webrtc_udp_ports {raw!r} is not a range within 1024-65535")
    return low, high


class _RangedConnection(aioice.Connection):
    """aioice's ICE agent, except that host candidates bind a port from `port_range`."""

    port_range: tuple[int, int] = (0, 0)

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        candidates = []
        for address in addresses:
            protocol = await self._bind_in_range(address)
            if protocol is None:
                continue
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            self._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        # STUN / TURN candidates as aioice makes them (no host addresses: those are done above)
        return candidates + await super().get_component_candidates(component, [], timeout)

    async def _bind_in_range(self, address: str) -> StunProtocol | None:
        low, high = self.port_range
        ports = list(range(low, high + 1))
        start = random.randrange(len(ports))  # spread calls over the range, fewer collisions
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in ports[start:] + ports[:start]:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            _, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(self), sock=sock)
            return protocol
        return None


def use_port_range(port_range: tuple[int, int] | None) -> None:
    """Make every peer connection of this process bind its host candidates in `port_range`.

    Process-wide on purpose: the range is a property of the pod (what its firewall exposes), and aiortc
    builds its ICE agents deep inside `RTCPeerConnection` with no hook to pass one in."""
    if port_range is None:
        aiortc.rtcicetransport.Connection = aioice.Connection  # type: ignore[misc]
        return
    ranged = type("RangedConnection", (_RangedConnection,), {"port_range": port_range})
    aiortc.rtcicetransport.Connection = ranged  # type: ignore[misc]


_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$")


def advertise(sdp: str, address: str | None) -> str:
    """Rewrite the host candidates (and connection lines) of an answer to the advertised address."""
    if not address:
        return sdp
    out = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match:
            line = match[1] + address + match[3]
        elif line.startswith("c=IN IP4 ") or line.startswith("c=IN IP6 "):
            line = ("c=IN IP6 " if ":" in address else "c=IN IP4 ") + address
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def ports_of(sdp: str) -> list[int]:
    """Ports of the candidates in an SDP (tests and diagnostics)."""
    found: list[int] = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            found.append(int(line.split()[5]))
    return found
