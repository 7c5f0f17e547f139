#!/usr/bin/python3
"""MQTT interop scenarios with the real paho-mqtt client (Debian's python3-paho-mqtt).

Usage: paho_check.py SCENARIO --transport tcp|tls|ws|wss --port N [--cafile F] [--version 3|5]
                     [--ws-path /mqtt]
Scenarios: roundtrip (QoS 0/1/2), shared (load spreading), will (abrupt close), takeover.
Prints "<SCENARIO> OK" and exits 0 on success; prints what went wrong and exits 1 otherwise.
Every wait is bounded.
"""
import argparse
import socket
import sys
import threading
import uuid

import paho.mqtt.client as mqtt

TIMEOUT = 10


def make_client(args, client_id, clean=True, will=None):
    proto = mqtt.MQTTv5 if args.version == 5 else mqtt.MQTTv311
    transport = "websockets" if args.transport in ("ws", "wss") else "tcp"
    kwargs = {"client_id": client_id, "protocol": proto, "transport": transport}
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = clean
    c = mqtt.Client(**kwargs)
    if transport == "websockets":
        c.ws_set_options(path=args.ws_path)
    if args.transport in ("tls", "wss"):
        c.tls_set(ca_certs=args.cafile)
    if will:
        c.will_set(will[0], will[1], qos=1)
    connected = threading.Event()
    c.on_connect = lambda *a, **k: connected.set()
    c.connect("localhost" if args.transport in ("tls", "wss") else "127.0.0.1", args.port, 60)
    c.loop_start()
    if not connected.wait(TIMEOUT):
        fail(f"{client_id}: no CONNACK")
    return c


def subscribe(c, topic, qos):
    done = threading.Event()
    c.on_subscribe = lambda *a, **k: done.set()
    c.subscribe(topic, qos)
    if not done.wait(TIMEOUT):
        fail(f"no SUBACK for {topic}")


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def roundtrip(args):
    topic = "interop/" + uuid.uuid4().hex
    got = []
    lock = threading.Condition()
    sub = make_client(args, "sub-" + uuid.uuid4().hex[:8])

    def on_message(_c, _u, msg):
        with lock:
            got.append((msg.payload.decode(), msg.qos))
            lock.notify_all()

    sub.on_message = on_message
    subscribe(sub, topic, 2)
    pub = make_client(args, "pub-" + uuid.uuid4().hex[:8])
    for qos in (0, 1, 2):
        info = pub.publish(topic, f"qos{qos}", qos=qos)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            fail(f"QoS {qos} publish not acknowledged")
    with lock:
        if not lock.wait_for(lambda: len(got) == 3, TIMEOUT):
            fail(f"received {got}")
    if sorted(got) != [("qos0", 0), ("qos1", 1), ("qos2", 2)]:
        fail(f"received {got}")
    print("ROUNDTRIP OK", flush=True)


def shared(args):
    topic = "jobs/" + uuid.uuid4().hex
    counts = {"a": 0, "b": 0}
    lock = threading.Condition()
    workers = []
    for name in counts:
        w = make_client(args, f"worker-{name}-" + uuid.uuid4().hex[:6])

        def on_message(_c, _u, _m, name=name):
            with lock:
                counts[name] += 1
                lock.notify_all()

        w.on_message = on_message
        subscribe(w, f"$share/workers/{topic}", 1)
        workers.append(w)
    pub = make_client(args, "pub-" + uuid.uuid4().hex[:8])
    for i in range(20):
        pub.publish(topic, str(i), qos=1).wait_for_publish(TIMEOUT)
    with lock:
        if not lock.wait_for(lambda: sum(counts.values()) == 20, TIMEOUT):
            fail(f"counts {counts}")
    if min(counts.values()) == 0:
        fail(f"not spread: {counts}")
    print(f"SHARED OK {counts}", flush=True)


def will(args):
    topic = "wills/" + uuid.uuid4().hex
    got = threading.Event()
    watcher = make_client(args, "watcher-" + uuid.uuid4().hex[:8])
    watcher.on_message = lambda _c, _u, m: got.set() if m.payload == b"gone" else None
    subscribe(watcher, topic, 1)
    dying = make_client(args, "dying-" + uuid.uuid4().hex[:8], will=(topic, "gone"))
    dying.loop_stop()
    # Close the socket without DISCONNECT, as a crashing device would.
    sock = dying.socket()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass
    sock.close()
    if not got.wait(TIMEOUT):
        fail("will not received")
    print("WILL OK", flush=True)


def takeover(args):
    cid = "dup-" + uuid.uuid4().hex[:8]
    dropped = threading.Event()
    first = make_client(args, cid)
    first.on_disconnect = lambda *a, **k: dropped.set()
    make_client(args, cid)
    if not dropped.wait(TIMEOUT):
        fail("first connection not taken over")
    print("TAKEOVER OK", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["roundtrip", "shared", "will", "takeover"])
    p.add_argument("--transport", default="tcp", choices=["tcp", "tls", "ws", "wss"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile")
    p.add_argument("--version", type=int, default=3, choices=[3, 5])
    p.add_argument("--ws-path", default="/mqtt")
    args = p.parse_args()
    globals()[args.scenario](args)


if __name__ == "__main__":
    main()
