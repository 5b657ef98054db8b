#!/usr/bin/env python3
"""Profiles zapgate's events path: one instance, one webhook (message.exchange)
to a local receiver answering 200; N events one at a time, then M from 16
concurrent senders. Counts sqlx::query log lines per event per phase and,
under callgrind, dumps instruction counts per phase.
usage: bench/profile-events.py BIN OUTDIR [--callgrind] [--store-off] [--pg URL] [--seq N] [--conc M]"""
import argparse, base64, http.client, http.server, json, os, re, socket, subprocess, threading, time
ap = argparse.ArgumentParser()
ap.add_argument("bin"); ap.add_argument("out")
ap.add_argument("--callgrind", action="store_true")
ap.add_argument("--store-off", action="store_true")
ap.add_argument("--pg")
ap.add_argument("--seq", type=int, default=200)
ap.add_argument("--conc", type=int, default=500)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

got = set(); got_lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            d = json.loads(body)["data"]
            with got_lock: got.add(d.get("id") or d.get("messageId"))
        except Exception: pass
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *x): pass
rport = free_port()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", rport), H); srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()

port = free_port()
env = dict(os.environ)
db = a.pg or f"sqlite://{a.out}/zg.db?mode=rwc"
if not a.pg and os.path.exists(f"{a.out}/zg.db"):
    for f in os.listdir(a.out):
        if f.startswith("zg.db"): os.remove(f"{a.out}/{f}")
env.update({
  "ZAPGATE_ADDR": f"127.0.0.1:{port}", "ZAPGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
  "ZAPGATE_DATABASE_URL": db, "ZAPGATE_ENCRYPTION_KEY": base64.b64encode(b"k"*32).decode(),
  "ZAPGATE_ADMIN_TOKEN": "admin-token-0123456789abcdef", "ZAPGATE_WHATSAPP_PROVIDER": "sandbox",
  "ZAPGATE_ALLOW_PRIVATE_URLS": "true", "ZAPGATE_RATE_LIMIT": "off",
  "ZAPGATE_RECONCILE_INTERVAL_SECS": "0", "ZAPGATE_LOG_FORMAT": "json",
  "RUST_LOG": "info,sqlx=warn,sqlx::query=debug" if not a.callgrind else "info,sqlx=warn",
})
if a.store_off: env["ZAPGATE_MESSAGE_RETENTION_DAYS"] = "0"
cmd = [a.bin, "serve"]
if a.callgrind:
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={a.out}/cg.%p", "--dump-instr=no"] + cmd
log = open(f"{a.out}/zapgate.log", "w")
p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, cwd=a.out)

class C:
    def __init__(s): s.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    def call(s, method, path, token, body=None):
        h = {"content-type": "application/json"}
        if token: h["token"] = token
        s.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = s.c.getresponse(); t = r.read()
        if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {t[:300]}")
        return json.loads(t) if t else None

deadline = time.time() + 300
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/health")
        if c.getresponse().status == 200: break
    except Exception: pass
    if time.time() > deadline or p.poll() is not None: raise SystemExit("no health")
    time.sleep(0.2)
c = C()
acct = c.call("POST", "/admin/accounts", env["ZAPGATE_ADMIN_TOKEN"], {"name": "prof", "maxInstances": 5})
inst = c.call("POST", "/api/instance/new", acct["token"], {"name": "prof0"})
tok = inst["instance"]["token"]
c.call("GET", "/api/instance/connect/prof0", tok)
c.call("POST", "/api/sandbox/prof0/pair", tok, {"number": "5511990000000"})
c.call("POST", "/api/events/webhook/prof0", tok, {"enabled": True, "url": f"http://127.0.0.1:{rport}/hook", "events": ["message.exchange", "message.status"]})

counter = [0]
def send(cc, k):
    return cc.call("POST", "/api/sandbox/prof0/inbound", tok, {"from": f"5521{k % 50:08d}", "pushName": "C", "text": f"e{k}"})["id"]

def wait_for(ids):
    end = time.time() + 600
    while time.time() < end:
        with got_lock:
            if ids <= got: return
        time.sleep(0.05)
    raise SystemExit(f"only {len(ids & got)} of {len(ids)} delivered")

def logpos():
    log.flush(); return os.path.getsize(f"{a.out}/zapgate.log")

def phase(name, n, conc):
    # settle: previous outcomes recorded
    time.sleep(1.0)
    if a.callgrind: subprocess.run(["callgrind_control", "--zero", str(p.pid)], capture_output=True)
    start = logpos(); t0 = time.time()
    ids = set(); lock = threading.Lock(); base = counter[0]; counter[0] += n
    def worker(ks):
        cc = C()
        for k in ks:
            i = send(cc, base + k)
            with lock: ids.add(i)
    ks = list(range(n))
    th = [threading.Thread(target=worker, args=(ks[j::conc],)) for j in range(conc)]
    for t in th: t.start()
    for t in th: t.join()
    wait_for(ids)
    time.sleep(1.0)  # outcomes recorded
    el = time.time() - t0
    if a.callgrind:
        subprocess.run(["callgrind_control", "--dump=" + name, str(p.pid)], capture_output=True)
    end = logpos()
    with open(f"{a.out}/zapgate.log") as f:
        f.seek(start); chunk = f.read(end - start)
    stmts = [l for l in chunk.splitlines() if "sqlx::query" in l]
    kinds = {}
    for l in stmts:
        try: s = json.loads(l)["fields"].get("summary", "?")
        except Exception: s = "?"
        s = re.sub(r"\s+", " ", s)[:60]
        kinds[s] = kinds.get(s, 0) + 1
    res = {"phase": name, "events": n, "statements": len(stmts), "per_event": round(len(stmts) / n, 2),
           "commits": sum(v for k, v in kinds.items() if k.upper().startswith("COMMIT")), "secs": round(el, 2), "kinds": kinds}
    print(json.dumps(res), flush=True)
    return res

# warm-up
phase("warm", 20, 1)
r1 = phase("seq", a.seq, 1)
r2 = phase("conc", a.conc, 16)
p.terminate(); p.wait(timeout=120)
