"""Open vSwitch on lab nodes: each node's database, bridges and ports, and OpenFlow tables.

Every node runs its own ovsdb-server and ovs-vswitchd (started as `StartProcess` ops, stopped
by PID on `down`). This module creates the database (`ovsdb-tool`, once per process: the next
nodes get a copy), configures it through the OVS Python bindings' IDL over the node's own unix
socket (one transaction per `OvsConfigure`, then the wait for ovs-vswitchd that `ovs-vsctl`
does, or later in an `OvsSync`), replaces a bridge's flows atomically with `ovs-ofctl --bundle
replace-flows`, and sends runtime commands to ovs-vswitchd's control socket as `ovs-appctl`
does (a JSON-RPC request through the same bindings, no process). They only talk to the node's
own sockets under the lab's state directory (never the host's Open vSwitch), so they run from
here without entering the namespace.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import ovs.db.data
import ovs.db.error
import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream

from netlab.errors import ApplyError
from netlab.plan.ops import VSWITCH_SCHEMA, OvsAppctl, OvsConfigure, OvsCreateDb, OvsFlows, OvsSync

TIMEOUT = 60  # seconds for a tool, for a transaction, for ovs-vswitchd to apply one

# What an OvsConfigure reads and writes; the IDL replicates nothing else.
COLUMNS = {
    "Open_vSwitch": ["bridges", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "fail_mode", "other_config", "external_ids"],
    "Port": ["name", "interfaces", "external_ids"],
    "Interface": ["name", "type", "options", "mac", "mtu_request", "ofport_request", "ofport", "error"],
}


def run(argv: list[str], *, stdin: str | None = None, what: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, text=True, capture_output=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise ApplyError(f"{argv[0]} is not installed (Debian package openvswitch-switch)") from None
    except subprocess.TimeoutExpired:
        raise ApplyError(f"{what or argv[0]}: no answer within {TIMEOUT} s") from None
    if done.returncode != 0:
        raise ApplyError(f"{what or argv[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


_FRESH: dict[tuple[str, int], bytes] = {}  # (schema, its mtime) -> what `ovsdb-tool create` wrote


def create_db(op: OvsCreateDb) -> None:
    """`ovsdb-tool create`, run once per schema and process: a fresh database file depends on
    the schema alone (byte for byte), so the next nodes get a copy instead of a process."""
    db = Path(op.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        key = (op.schema, os.stat(op.schema).st_mtime_ns)
    except OSError as e:
        raise ApplyError(f"cannot read the OVSDB schema {op.schema}: {e.strerror} "
                         f"(Debian package openvswitch-common)") from None
    if key not in _FRESH:
        run(["ovsdb-tool", "create", str(db), op.schema])
        _FRESH[key] = db.read_bytes()
        return
    try:
        fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)  # as ovsdb-tool: never over a database
    except OSError as e:
        raise ApplyError(f"ovsdb-tool create {db}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(_FRESH[key])


# -- OVSDB through the IDL ---------------------------------------------------------------------
@cache
def _schema() -> dict:
    """The vswitch schema cut down to COLUMNS, read once per process: building the IDL's
    schema objects for the whole of it would cost more than the transaction."""
    try:
        full = json.loads(Path(VSWITCH_SCHEMA).read_text())
    except OSError as e:
        raise ApplyError(f"cannot read the OVSDB schema {VSWITCH_SCHEMA}: {e.strerror} "
                         f"(Debian package openvswitch-common)") from None
    tables = {name: {**full["tables"][name], "columns": {c: full["tables"][name]["columns"][c] for c in columns}}
              for name, columns in COLUMNS.items()}
    return {**full, "tables": tables}


class _LocalIdl(ovs.db.idl.Idl):
    """An IDL for a standalone, local ovsdb-server: it asks for the data at once, as the IDL
    itself does with a server that has no `_Server` database, instead of first monitoring
    `_Server` (cluster membership and leadership, which a node's own server does not have).
    That monitor's first answer carries the whole schema text, about 18 kB that the bindings'
    pure-Python JSON parser reads in 20-100 ms, the better part of a connection's cost. The
    hook is private to the bindings: without it, the ordinary handshake runs."""

    def restart_fsm(self) -> None:
        send = getattr(self, "_Idl__send_monitor_request", None)
        if send is None:
            super().restart_fsm()
            return
        self.sync_conditions()
        self.state = self.IDL_S_INITIAL  # what makes the request a plain monitor_cond
        send()


def connect(db: str, *, timeout: float = TIMEOUT) -> ovs.db.idl.Idl:
    """An IDL session on a node's database, holding a replica of COLUMNS."""
    helper = ovs.db.idl.SchemaHelper(schema_json=_schema())
    helper.register_all()
    idl = _LocalIdl(f"unix:{db}", helper)
    try:
        idl.run()
        _wait(idl, idl.has_ever_connected, time.monotonic() + timeout, f"ovsdb-server at {db}")
    except BaseException:
        idl.close()
        raise
    return idl


def _wait(idl: ovs.db.idl.Idl, done: Callable[[], bool], deadline: float, what: str,
          txn: ovs.db.idl.Transaction | None = None) -> None:
    """Run the IDL until `done()` (checked first, then after every wake-up), or fail at
    `deadline`. (`done` may commit a transaction: the IDL runs only between commits.)"""
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise ApplyError(f"{what}: no answer within {TIMEOUT} s")
        poller = ovs.poller.Poller()
        idl.wait(poller)
        if txn is not None:
            txn.wait(poller)
        poller.timer_wait(max(1, int(left * 1000)))
        poller.block()
        idl.run()


def _insert(txn: ovs.db.idl.Transaction, table, **columns) -> ovs.db.idl.Row:
    """A new row with these columns; an empty value leaves a column at its default."""
    row = txn.insert(table)
    for column, value in columns.items():
        if value in (None, "", (), {}) and column != "name":
            continue
        # The IDL drops a value its column refuses with only a log line (and its log is
        # off): check it here, so that a bad value is an error, as it is for ovs-vsctl.
        try:
            ovs.db.data.Datum.from_python(table.columns[column].type, value, lambda v: getattr(v, "uuid", v))
        except ovs.db.error.Error as e:
            raise ApplyError(f"{table.name} {column}: {e}") from None
        setattr(row, column, value)
    return row


def _by_name(idl: ovs.db.idl.Idl, table: str) -> dict[str, ovs.db.idl.Row]:
    return {row.name: row for row in idl.tables[table].rows.values()}


def _refuse(op: OvsConfigure, bridges: dict, ports: dict) -> str | None:
    """What `ovs-vsctl` would refuse in `op`, given the bridges and ports the database holds."""
    new_bridges = [b.name for b in op.bridges]
    new_ports = new_bridges + [p.name for p in op.ports]
    for name in new_bridges:
        if name in bridges or new_bridges.count(name) > 1:
            return f"cannot create a bridge named {name} because a bridge named {name} already exists"
    for name in new_ports:
        if name in ports or new_ports.count(name) > 1:
            return f"cannot create a port named {name} because a port named {name} already exists"
    for p in op.ports:
        if p.bridge not in bridges and p.bridge not in new_bridges:
            return f"no bridge named {p.bridge}"
    for p in op.del_ports:
        if p.name not in ports:
            return f"no port named {p.name}"
        if p.bridge not in bridges or ports[p.name] not in bridges[p.bridge].ports:
            return f"port {p.name} is not on bridge {p.bridge}"
    return None


def configure(op: OvsConfigure, idl: ovs.db.idl.Idl) -> None:
    """One transaction, as `ovs-vsctl` builds it for the commands `op` prints as, then (unless
    `op.wait` is off) the wait until ovs-vswitchd has applied it (next_cfg → cur_cfg) and the
    check that every new interface got an OpenFlow port. (An interface ovs-vswitchd cannot open stays in the
    database, as with ovs-vsctl, which only warns; here it is an error.)"""
    deadline = time.monotonic() + TIMEOUT
    idl.run()  # what changed since the session's last transaction
    tables = idl.tables
    roots = list(tables["Open_vSwitch"].rows.values())
    bridges, ports = _by_name(idl, "Bridge"), _by_name(idl, "Port")
    refused = _refuse(op, bridges, ports) or (
        None if roots or op.init else f"the database at {op.db} has no Open_vSwitch row (needs init)")
    if refused:
        raise ApplyError(refused)

    txn = ovs.db.idl.Transaction(idl)
    try:
        txn.add_comment(f"netlab: {op.netns}")

        def port(name: str, external_ids, **interface) -> ovs.db.idl.Row:
            iface = _insert(txn, tables["Interface"], name=name, **interface)
            return _insert(txn, tables["Port"], name=name, interfaces=[iface], external_ids=dict(external_ids))

        added = {b.name: [port(b.name, b.external_ids, type="internal")] for b in op.bridges}
        for p in op.ports:
            added.setdefault(p.bridge, []).append(
                port(p.name, p.external_ids, type=p.type, options=dict(p.options), mac=p.mac,
                     mtu_request=p.mtu_request, ofport_request=p.ofport_request))
        new_bridges = [_insert(txn, tables["Bridge"], name=b.name, datapath_type=b.datapath_type,
                               fail_mode=b.fail_mode, other_config=dict(b.other_config),
                               external_ids=dict(b.external_ids), ports=added.pop(b.name))
                       for b in op.bridges]
        for bridge, rows in added.items():
            for row in rows:
                bridges[bridge].addvalue("ports", row)
        for p in op.del_ports:
            # The Port row and its Interface go with the last reference (they are not roots).
            bridges[p.bridge].delvalue("ports", ports[p.name])
        if roots:
            roots[0].increment("next_cfg")
            for row in new_bridges:
                roots[0].addvalue("bridges", row)
        else:  # init: a fresh row, next_cfg 1 being what the increment makes of its 0
            _insert(txn, tables["Open_vSwitch"], next_cfg=1, bridges=new_bridges)
    except BaseException:
        txn.abort()
        raise

    _wait(idl, lambda: txn.commit() != ovs.db.idl.Transaction.INCOMPLETE, deadline,
          f"ovsdb-server at {op.db}", txn)
    status = txn.commit()
    if status == ovs.db.idl.Transaction.UNCHANGED:
        return  # nothing to write (and so nothing for ovs-vswitchd to apply)
    if status != ovs.db.idl.Transaction.SUCCESS:
        raise ApplyError(f"transaction on {op.db}: {ovs.db.idl.Transaction.status_to_string(status)}"
                         f"{': ' + txn.get_error() if txn.get_error() else ''}")
    if op.wait:
        target = txn.get_increment_new_value() if roots else 1
        _await_vswitchd(idl, target, deadline, op.db, [b.name for b in op.bridges] + [p.name for p in op.ports])


def sync(op: OvsSync, idl: ovs.db.idl.Idl) -> None:
    """Wait until ovs-vswitchd has applied the configuration the database asks for now (its
    `next_cfg`, bumped by every `OvsConfigure`), then check the interfaces named."""
    idl.run()
    roots = list(idl.tables["Open_vSwitch"].rows.values())
    if not roots:
        raise ApplyError(f"the database at {op.db} has no Open_vSwitch row (needs init)")
    _await_vswitchd(idl, roots[0].next_cfg, time.monotonic() + TIMEOUT, op.db, list(op.interfaces))
    missing = sorted(set(op.interfaces) - set(_by_name(idl, "Interface")))
    if missing:
        raise ApplyError(f"the database at {op.db} has no interface named {missing[0]}")


def _await_vswitchd(idl: ovs.db.idl.Idl, target: int, deadline: float, db: str, names: list[str]) -> None:
    """Until ovs-vswitchd's `cur_cfg` reaches `target`; then each interface named must have
    an OpenFlow port."""
    def applied() -> bool:
        rows = list(idl.tables["Open_vSwitch"].rows.values())
        return bool(rows) and rows[0].cur_cfg >= target

    _wait(idl, applied, deadline, f"ovs-vswitchd (database {db}) applying the configuration")
    interfaces = _by_name(idl, "Interface")
    for name in names:
        iface = interfaces.get(name)
        if iface is not None and iface.ofport == [-1]:
            raise ApplyError(f"could not add network device {name} to ofproto "
                             f"({(iface.error or ['unknown error'])[0]})")


class Sessions:
    """The IDL sessions of one run (`up`, a change), one per node database, opened on first
    use and closed together at the end: a node configured twice connects once."""

    def __init__(self) -> None:
        self._idls: dict[str, ovs.db.idl.Idl] = {}

    def get(self, db: str) -> ovs.db.idl.Idl:
        if db not in self._idls:
            self._idls[db] = connect(db)
        return self._idls[db]

    def close(self) -> None:
        for idl in self._idls.values():
            idl.close()
        self._idls.clear()


def flows(op: OvsFlows) -> None:
    run(["ovs-ofctl", "--bundle", "replace-flows", f"unix:{op.target}", "-"],
        stdin="\n".join(op.flows) + "\n")


def appctl(op: OvsAppctl) -> str:
    """What `ovs-appctl -t TARGET COMMAND ARGS...` does, without a process: one JSON-RPC
    request on the daemon's control socket; its answer, or an error with the daemon's words."""
    what = f"ovs-appctl -t {op.target} {op.args[0]}"
    deadline = time.monotonic() + TIMEOUT
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(f"unix:{op.target}"), TIMEOUT * 1000)
    if error:
        raise ApplyError(f"{what}: cannot connect: {os.strerror(error)}")
    conn = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request(op.args[0], list(op.args[1:]))
        error, reply = conn.send(request), None
        while not error and reply is None:
            conn.run()
            error, msg = conn.recv()
            if error == errno.EAGAIN:
                error, left = 0, deadline - time.monotonic()
                if left <= 0:
                    raise ApplyError(f"{what}: no answer within {TIMEOUT} s")
                poller = ovs.poller.Poller()
                conn.wait(poller)
                conn.recv_wait(poller)
                poller.timer_wait(max(1, int(left * 1000)))
                poller.block()
            elif msg is not None and msg.id == request.id:
                reply = msg
        if error:
            raise ApplyError(f"{what}: {'connection closed' if error == ovs.jsonrpc.EOF else os.strerror(error)}")
        if reply.error is not None:
            raise ApplyError(f"{what} failed: {str(reply.error).strip()}")
        return reply.result
    finally:
        conn.close()


HANDLERS = {OvsCreateDb: lambda ctx, op: create_db(op),
            OvsConfigure: lambda ctx, op: configure(op, ctx.ovsdb.get(op.db)),
            OvsSync: lambda ctx, op: sync(op, ctx.ovsdb.get(op.db)),
            OvsFlows: lambda ctx, op: flows(op), OvsAppctl: lambda ctx, op: appctl(op)}
