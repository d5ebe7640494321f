#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A kl-exporter client written from docs/protocol.md alone.

Speaks nng's SP-over-TCP wire format directly with sockets (no nng
library), frames and gzip with the standard library, protobuf with
Debian's python3-protobuf, the schema loaded from the descriptor set the
build generates from proto/kloudlens.proto.

    interop_client.py --admin HOST:PORT --sub HOST:PORT --desc kloudlens.desc
                      [--since N] --expect N [--timeout S]

Prints "subscribed <topic>" once the session is open, then one JSON line
summarising what it received. Exits 0 when it received envelopes
--since .. --since+expect-1 exactly once and in order.
"""
import argparse
import gzip
import json
import socket
import struct
import sys
import time

from google.protobuf import descriptor_pb2, message_factory

PUB, SUB, REQ, REP = 0x20, 0x21, 0x30, 0x31


def load_schema(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return message_factory.GetMessages(fds.file)


class SP:
    """One SP-over-TCP connection (docs/protocol.md section 1)."""

    def __init__(self, addr, proto, peer):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=5)
        self.s.sendall(b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00")
        hdr = self._read(8)
        if hdr[:4] != b"\x00SP\x00" or struct.unpack(">H", hdr[4:6])[0] != peer:
            raise RuntimeError("bad SP header from peer: %r" % hdr)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    def send(self, payload):
        self.s.sendall(struct.pack(">Q", len(payload)) + payload)

    def recv(self, timeout=None):
        self.s.settimeout(timeout)
        (n,) = struct.unpack(">Q", self._read(8))
        self.s.settimeout(None)
        return self._read(n)


def frames(buf):
    """gRPC length-prefixed frames (section 2)."""
    off = 0
    while off < len(buf):
        if len(buf) - off < 5:
            raise ValueError("truncated frame header")
        flag = buf[off]
        (n,) = struct.unpack(">I", buf[off + 1:off + 5])
        body = buf[off + 5:off + 5 + n]
        if len(body) != n:
            raise ValueError("truncated frame")
        if flag == 1:
            body = gzip.decompress(body)
        elif flag != 0:
            raise ValueError("bad compressed flag")
        yield body
        off += 5 + n


def frame(msg_bytes):
    return b"\x00" + struct.pack(">I", len(msg_bytes)) + msg_bytes


class Client:
    def __init__(self, admin, schema):
        self.req = SP(admin, REQ, REP)
        self.reqid = 0x80000000
        self.m = schema

    def call(self, method, request, response_type):
        self.reqid += 1
        body = method.encode() + b"\x00"
        if request is not None:
            body += frame(request.SerializeToString())
        self.req.send(struct.pack(">I", self.reqid) + body)
        while True:
            rep = self.req.recv(timeout=5)
            if struct.unpack(">I", rep[:4])[0] == self.reqid:
                break
        parts = list(frames(rep[4:]))
        status = self.m["kloudlens.v1.RpcStatus"]()
        status.ParseFromString(parts[0])
        if status.code != 0:
            return status.code, status.message, None
        resp = self.m[response_type]()
        resp.ParseFromString(parts[1])
        return 0, "", resp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--desc", required=True)
    ap.add_argument("--since", type=int, default=0)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    m = load_schema(a.desc)

    # the subscriber connects first, so nothing the session sends is missed
    sub = SP(a.sub, SUB, PUB)
    cli = Client(a.admin, m)

    code, msg, st = cli.call("/kloudlens.v1.AdminService/GetStatus", None,
                             "kloudlens.v1.StatusResponse")
    assert code == 0, msg
    code, msg, _ = cli.call("/kloudlens.v1.AdminService/NoSuchMethod", None,
                            "kloudlens.v1.StatusResponse")
    assert code == 12, (code, msg)           # UNIMPLEMENTED
    code, msg, _ = cli.call("/kloudlens.v1.EventService/QueryGraph", None,
                            "kloudlens.v1.GraphSnapshot")
    assert code == 14, (code, msg)           # UNAVAILABLE

    req = m["kloudlens.v1.SubscribeRequest"](has_since=True, since_seq=a.since)
    code, msg, resp = cli.call("/kloudlens.v1.EventService/SubscribeRaw", req,
                               "kloudlens.v1.SubscribeResponse")
    assert code == 0, msg
    topic = resp.topic.encode() + b"\x00"
    print("subscribed", resp.topic, flush=True)

    expected = resp.next_seq
    got, syscalls, compressed, messages, last_renew = 0, 0, 0, 0, time.time()
    deadline = time.time() + a.timeout
    while got < a.expect and time.time() < deadline:
        if time.time() - last_renew > 0.5:
            renew = m["kloudlens.v1.SubscribeRequest"](session_id=resp.session_id,
                                                       ack_seq=expected)
            cli.call("/kloudlens.v1.EventService/SubscribeRaw", renew,
                     "kloudlens.v1.SubscribeResponse")
            last_renew = time.time()
        try:
            raw = sub.recv(timeout=0.5)
        except socket.timeout:
            continue
        if not raw.startswith(topic):
            continue            # another topic: nng filters on the subscriber side
        body = raw[len(topic):]
        off, parts = 0, []
        while off < len(body):    # count compressed frames too
            compressed += body[off] == 1
            (n,) = struct.unpack(">I", body[off + 1:off + 5])
            off += 5 + n
        parts = list(frames(body))
        hdr = m["kloudlens.v1.BatchHeader"]()
        hdr.ParseFromString(parts[0])
        assert hdr.count == len(parts) - 1, "count mismatch"
        if hdr.from_seq != expected:
            print(json.dumps({"error": "gap", "expected": expected,
                              "from_seq": hdr.from_seq}), flush=True)
            return 1
        for p in parts[1:]:
            env = m["kloudlens.v1.EventEnvelope"]()
            env.ParseFromString(p)
            if env.seq != expected:
                print(json.dumps({"error": "order", "expected": expected,
                                  "seq": env.seq}), flush=True)
                return 1
            if env.WhichOneof("payload") == "syscall":
                syscalls += 1
                assert env.syscall.name == "openat", env.syscall.name
                assert env.syscall.path == "/etc/" + "a" * 300 + "/hosts", env.syscall.path
            assert env.cursor == "raw:%d" % env.seq
            expected += 1
            got += 1
        expected = hdr.to_seq + 1
        messages += 1

    cli.call("/kloudlens.v1.EventService/Unsubscribe",
             m["kloudlens.v1.UnsubscribeRequest"](session_id=resp.session_id),
             "kloudlens.v1.UnsubscribeResponse")
    print(json.dumps({"received": got, "syscalls": syscalls, "messages": messages,
                      "compressed_frames": compressed, "next": expected,
                      "version": st.version}), flush=True)
    return 0 if got == a.expect else 1


if __name__ == "__main__":
    sys.exit(main())
