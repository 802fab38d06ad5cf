"""Summaries (medians, min-max, paired ratios), the Markdown report and the PNG chart."""

# ruff: noqa: RUF001 - the report is typeset: multiplication signs and en dashes.

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BASELINES = ("bare-asyncio", "bare-uvloop")
OURS = "ours-uvloop"
AA = "ours-uvloop-aa"

#: Goals of issue 5 for ecdhe_async (ratios: server/client CPU relative to bare asyncio).
TARGETS = {
    "hs_ratio": 0.64,
    "gb_ratio": 0.85,
    "idle_kib_uvloop": 48.0,
    "idle_kib_asyncio": 128.0,
}
#: Reference ratios the issue measured with a harness of the same design.
REFERENCE = {
    "bare-asyncio": ("1.00×", "1.00×", "~290 KiB"),
    "bare-uvloop": ("0.83×", "0.92×", "~52 KiB"),
    "node": ("0.76×", "1.40×", "—"),
    "openssl": ("0.64–0.70×", "—", "—"),
}


def stats(values: Iterable[float | None]) -> dict[str, float] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
    }


def _paired(
    rows: list[dict[str, Any]], server: str, base: str, metric: str
) -> dict[str, float] | None:
    by_round: dict[int, dict[str, float]] = {}
    for row in rows:
        if row.get(metric) is not None:
            by_round.setdefault(row["round"], {})[row["server"]] = row[metric]
    ratios = [
        r[server] / r[base] for r in by_round.values() if server in r and base in r and r[base] > 0
    ]
    return stats(ratios)


def _summarize_mode(rows: list[dict[str, Any]], primary: str, client: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    servers = list(dict.fromkeys(r["server"] for r in rows))
    for server in servers:
        mine = [r for r in rows if r["server"] == server]
        entry: dict[str, Any] = {
            key: stats(r.get(key) for r in mine)
            for key in (
                primary,
                client,
                "server_over_client",
                "ops_per_s",
                "mb_per_s",
                "p50_ms",
                "p99_ms",
                "server_util",
                "client_util",
            )
        }
        entry["errors"] = sum(r.get("errors", 0) for r in mine)
        entry["rounds"] = len(mine)
        entry["vs"] = {}
        for base in (*BASELINES, OURS, "ours-asyncio"):
            if base in servers and base != server:
                entry["vs"][base] = {
                    "normalized": _paired(rows, server, base, "server_over_client"),
                    "server_cpu": _paired(rows, server, base, primary),
                }
        out[server] = entry
    return out


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rounds"]
    hs = [r for r in rows if r["mode"] == "handshakes"]
    tp = [r for r in rows if r["mode"] == "throughput"]
    summary: dict[str, Any] = {
        "handshakes": _summarize_mode(hs, "server_us_per_op", "client_us_per_op"),
        "throughput": _summarize_mode(tp, "server_s_per_gb", "client_s_per_gb"),
        "s_time": _summarize_mode(result.get("s_time", []), "server_us_per_op", "client_us_per_op"),
    }
    mem: dict[str, Any] = {}
    for row in result.get("memory", []):
        mem.setdefault(row["server"], {})[f"{row['kind']}:{row['note']}"] = row
    summary["memory"] = mem
    summary["targets"] = _targets(summary, result.get("memory", []))
    return summary


def _ratio(summary: dict[str, Any], mode: str) -> dict[str, float] | None:
    entry = summary[mode].get(OURS)
    if not entry:
        return None
    vs = entry["vs"].get("bare-asyncio")
    return vs["normalized"] if vs else None


def _idle(memory: list[dict[str, Any]], server: str) -> float | None:
    for row in memory:
        if row["server"] == server and row["kind"] == "tls":
            return float(row["kib_per_conn"])
    return None


def _targets(summary: dict[str, Any], memory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, label, value, goal in (
        (
            "hs_ratio",
            "CPU per handshake, ecdhe_async/uvloop vs bare asyncio (server/client)",
            _ratio(summary, "handshakes"),
            TARGETS["hs_ratio"],
        ),
        (
            "gb_ratio",
            "CPU per GB echoed, ecdhe_async/uvloop vs bare asyncio (server/client)",
            _ratio(summary, "throughput"),
            TARGETS["gb_ratio"],
        ),
    ):
        med = value["median"] if value else None
        out.append(
            {
                "name": name,
                "label": label,
                "goal": goal,
                "unit": "×",
                "measured": value,
                "met": None if med is None else med <= goal,
            }
        )
    for name, server, goal in (
        ("idle_kib_uvloop", OURS, TARGETS["idle_kib_uvloop"]),
        ("idle_kib_asyncio", "ours-asyncio", TARGETS["idle_kib_asyncio"]),
    ):
        kib = _idle(memory, server)
        out.append(
            {
                "name": name,
                "label": f"RSS per idle TLS connection, {server}",
                "goal": goal,
                "unit": "KiB",
                "measured": None
                if kib is None
                else {"median": kib, "min": kib, "max": kib, "n": 1},
                "met": None if kib is None else kib <= goal,
            }
        )
    return out


# -- Markdown -----------------------------------------------------------------------------------
def _f(st: dict[str, float] | None, digits: int = 0, suffix: str = "", spread: bool = True) -> str:
    if not st:
        return "—"
    med = f"{st['median']:.{digits}f}{suffix}"
    if not spread or st["n"] < 2:
        return med
    return f"{med} ({st['min']:.{digits}f}–{st['max']:.{digits}f})"


def _label(result: dict[str, Any], key: str) -> str:
    return str(result["servers"].get(key, {}).get("label", key))


def _mode_table(result: dict[str, Any], mode: str) -> list[str]:
    summary = result["summary"][mode]
    if not summary:
        return ["(not measured)"]
    hs = mode != "throughput"
    unit = "µs/hs" if hs else "s/GB"
    primary = "server_us_per_op" if hs else "server_s_per_gb"
    client = "client_us_per_op" if hs else "client_s_per_gb"
    digits = 0 if hs else 2
    head = (
        f"| server | server CPU {unit} | client CPU {unit} | server/client | "
        "× bare asyncio | × bare uvloop | raw CPU × bare asyncio | "
        + ("hs/s | p50 ms | p99 ms | tickets |" if hs else "MB/s | block RTT p50 ms | p99 ms |")
    )
    if mode == "s_time":
        head = (
            f"| server | server CPU {unit} | client CPU {unit} | server/client | "
            "× bare asyncio | × bare uvloop | raw CPU × bare asyncio | hs/s |"
        )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for server, e in summary.items():
        vs_a = e["vs"].get("bare-asyncio", {})
        vs_u = e["vs"].get("bare-uvloop", {})
        cells = [
            _label(result, server),
            _f(e[primary], digits),
            _f(e[client], digits, spread=False),
            _f(e["server_over_client"], 2),
            "1.00×" if server == "bare-asyncio" else _f(vs_a.get("normalized"), 2, "×"),
            "1.00×" if server == "bare-uvloop" else _f(vs_u.get("normalized"), 2, "×"),
            "1.00×" if server == "bare-asyncio" else _f(vs_a.get("server_cpu"), 2, "×"),
        ]
        if mode == "s_time":
            cells.append(_f(e["ops_per_s"], 0, spread=False))
        elif hs:
            cells += [
                _f(e["ops_per_s"], 0, spread=False),
                _f(e["p50_ms"], 1, spread=False),
                _f(e["p99_ms"], 1, spread=False),
                str(result["servers"].get(server, {}).get("tickets", "")),
            ]
        else:
            cells += [
                _f(e["mb_per_s"], 0, spread=False),
                _f(e["p50_ms"], 1, spread=False),
                _f(e["p99_ms"], 1, spread=False),
            ]
        if e.get("errors"):
            cells[0] += f" ({e['errors']} errors)"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _memory_table(result: dict[str, Any]) -> list[str]:
    rows = result.get("memory", [])
    if not rows:
        return ["(not measured)"]
    lines = [
        "| server | test | config | KiB per connection | per live connection | "
        "live at measurement | RSS before → with (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        per_alive = r["kib_per_alive_conn"]
        lines.append(
            f"| {_label(result, r['server'])} | "
            + ("idle TLS" if r["kind"] == "tls" else "silent TCP (no ClientHello)")
            + f" | {r['note'] or 'defaults'} | {r['kib_per_conn']:.1f} | "
            + ("—" if per_alive is None else f"{per_alive:.1f}")
            + f" | {r['alive_at_measure']}/{r['connections']} | "
            f"{r['rss_before'] / 2**20:.1f} → {r['rss_with'] / 2**20:.1f} |"
        )
    return lines


def _load_line(result: dict[str, Any]) -> str:
    other = stats(r.get("other_load") for r in result["rounds"])
    steal = stats(r.get("steal") for r in result["rounds"])
    retried = sum(1 for r in result["rounds"] if r.get("attempts", 1) > 1)
    if not other:
        return ""
    return (
        f"The machine is shared: CPU used by other processes during the measurement windows was "
        f"{other['median']:.2f} CPUs median (max {other['max']:.2f})"
        + (f", steal {steal['median']:.2f}" if steal and steal["max"] > 0.01 else "")
        + f"; {retried} window(s) re-measured because of it. "
        "The A/A pair below shows the resulting noise floor."
    )


#: Observability variants (issue 13), each paired per round with ours-uvloop (metrics off,
#: access log on). Goal: metrics on + access log off costs at most ~3 % more server CPU.
OBSERVE = ("ours-uvloop-metrics", "ours-uvloop-nolog")


def _observe_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for key in OBSERVE:
        entry = result["summary"].get("handshakes", {}).get(key)
        vs = entry["vs"].get(OURS) if entry else None
        if vs:
            lines.append(
                f"- {_label(result, key)}: raw server CPU per handshake "
                f"{_f(vs['server_cpu'], 3, '×')}, server/client {_f(vs['normalized'], 3, '×')}"
            )
    if not lines:
        return []
    return [
        "## Observability cost (issue 13; handshakes, paired per round with "
        f"{_label(result, OURS)}, i.e. metrics off and access log on)",
        "",
        *lines,
        "",
    ]


def markdown(result: dict[str, Any], png: str | None) -> str:
    if not result:
        return "# Benchmark did not complete\n"
    m = result["machine"]
    c = result["config"]
    s = result["summary"]
    out = [
        "# ecdhe_async benchmark: handshakes, throughput, memory",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores (server pinned to CPU {m['server_cpu']},"
        f" load generator to CPU {m['client_cpu']}); Linux {m['kernel']}; Python {m['python']}"
        f" ({m['python_openssl']}); uvloop {m['uvloop']}; node {m['node']}; "
        f"{m['openssl_cli']}. Run {m['date']}, {result['elapsed_s']:.0f} s"
        + (" (--quick)" if c.get("quick") else "")
        + ".",
        "",
        _load_line(result),
        "",
        "Same certificate (ECDSA P-256, self-signed), TLS 1.3, group X25519, "
        "TLS_AES_256_GCM_SHA384 for every server (checked by a probe connection). "
        f"Medians of {c['rounds']} rounds with (min–max); rounds alternate the servers in "
        "rotated order; CPU = utime+stime of the server's process tree (/proc/PID/stat) over "
        "the measurement window. **server/client** divides by the load generator's CPU for the "
        "same work (cancels machine drift); **× bare …** are per-round paired ratios of "
        "server/client to that baseline (lower is better); **raw CPU ×** is the same without "
        "dividing by the client.",
        "",
        f"## Handshakes ({c['concurrency']} workers; each: connect, full TLS 1.3 handshake, "
        f"16-byte echo, close; {c['hs_seconds']:g} s windows after {c['warmup']:g} s warm-up)",
        "",
        *_mode_table(result, "handshakes"),
        "",
        "tickets = TLS 1.3 session tickets the server sends per connection (server defaults; the "
        "load generator never resumes).",
        "",
        f"## Throughput ({c['connections']} connections, 64 KiB blocks, {c['window']} in flight "
        f"per connection, echoed back; {c['tp_seconds']:g} s windows)",
        "",
        *_mode_table(result, "throughput"),
        "",
    ]
    if s.get("s_time"):
        out += [
            "## Second client: `openssl s_time -new` (C, one connection at a time, no payload)",
            "",
            *_mode_table(result, "s_time"),
            "",
        ]
    out += [
        f"## Memory ({c['mem_conns']} connections; fresh server; RSS growth of the server "
        "tree over a 50-connection warm-up)",
        "",
        *_memory_table(result),
        "",
        "ecdhe_async drops connections that have not sent a byte beyond `max_pending_handshakes` "
        "(default 512): with the default, most silent sockets are evicted, so the per-connection "
        "figure for the raised cap is the comparable one.",
        "",
    ]
    aa_lines = []
    for mode in ("handshakes", "throughput", "s_time"):
        entry = s.get(mode, {}).get(AA)
        if entry and entry["vs"].get(OURS):
            aa_lines.append(
                f"- {mode}: server/client {_f(entry['vs'][OURS]['normalized'], 3, '×')}, "
                f"raw server CPU {_f(entry['vs'][OURS]['server_cpu'], 3, '×')}"
            )
    if aa_lines:
        out += [
            "## Noise floor (A/A: a second ecdhe_async/uvloop process against the first)",
            "",
            *aa_lines,
            "",
        ]
    cand_lines = []
    for mode in ("handshakes", "throughput", "s_time"):
        for key, entry in s.get(mode, {}).items():
            base = OURS if key.endswith("uvloop") else "ours-asyncio"
            if key.startswith("candidate-") and entry["vs"].get(base):
                cand_lines.append(
                    f"- {mode}, {_label(result, key)} vs {_label(result, base)}: server/client "
                    f"{_f(entry['vs'][base]['normalized'], 3, '×')}, raw server CPU "
                    f"{_f(entry['vs'][base]['server_cpu'], 3, '×')}"
                )
    if cand_lines:
        out += ["## Candidate against the current code (paired per round)", "", *cand_lines, ""]
    out += _observe_lines(result)
    out += [
        "## Goals (issue 5)",
        "",
        "| goal | target | measured | |",
        "| --- | --- | --- | --- |",
    ]
    for t in s["targets"]:
        unit = t["unit"]
        digits = 2 if unit == "×" else 1
        measured = _f(t["measured"], digits, "×" if unit == "×" else " KiB")
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
        goal = f"≤ {t['goal']:.2f}×" if unit == "×" else f"≤ {t['goal']:.0f} KiB"
        out.append(f"| {t['label']} | {goal} | {measured} | {verdict} |")
    out += [
        "",
        "Reference from the issue (same design, same machine type): bare uvloop 0.83× / 0.92× / "
        "~52 KiB; node 0.76× / 1.40×; openssl s_server 0.64–0.70× per handshake; bare asyncio "
        "~290 KiB per idle TLS connection.",
        "",
    ]
    if png:
        out += [f"![ratios to bare asyncio]({png})", ""]
    return "\n".join(out)


# -- chart --------------------------------------------------------------------------------------
def chart(result: dict[str, Any], path: Path) -> bool:
    """Bar charts of the paired ratios and of memory per connection; False without matplotlib."""
    if not result:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = result["summary"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    panels = (
        ("handshakes", "CPU per handshake\n(server/client, × bare asyncio)", TARGETS["hs_ratio"]),
        ("throughput", "CPU per GB echoed\n(server/client, × bare asyncio)", TARGETS["gb_ratio"]),
    )
    for ax, (mode, title, goal) in zip(axes[:2], panels, strict=False):
        names, meds, lo, hi = [], [], [], []
        for server, e in s[mode].items():
            st = (
                {"median": 1.0, "min": 1.0, "max": 1.0}
                if server == "bare-asyncio"
                else (e["vs"].get("bare-asyncio") or {}).get("normalized")
            )
            if not st:
                continue
            names.append(_label(result, server))
            meds.append(st["median"])
            lo.append(st["median"] - st["min"])
            hi.append(st["max"] - st["median"])
        y = range(len(names))
        colors = ["tab:green" if "ecdhe_async" in n else "tab:gray" for n in names]
        ax.barh(list(y), meds, xerr=[lo, hi], color=colors, capsize=3)
        ax.set_yticks(list(y), names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axvline(goal, color="tab:red", ls="--", lw=1, label=f"goal ≤ {goal}×")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    ax = axes[2]
    mem = [r for r in result.get("memory", []) if r["kind"] == "tls"]
    if mem:
        names = [_label(result, r["server"]) for r in mem]
        vals = [r["kib_per_conn"] for r in mem]
        colors = ["tab:green" if "ecdhe_async" in n else "tab:gray" for n in names]
        ax.barh(range(len(names)), vals, color=colors)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(TARGETS["idle_kib_uvloop"], color="tab:red", ls="--", lw=1, label="goal 48 KiB")
        ax.axvline(TARGETS["idle_kib_asyncio"], color="tab:orange", ls=":", lw=1, label="128 KiB")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title("RSS per idle TLS connection (KiB)", fontsize=10)
    m = result["machine"]
    fig.suptitle(
        f"ecdhe_async benchmark: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, "
        f"{m['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
