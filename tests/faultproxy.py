#!/usr/bin/env python3
"""faultproxy: a fault-injecting, HTTP/1.1-aware TCP proxy for walship tests.

    faultproxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT2
                  --control 127.0.0.1:PORT3 [--delay-ms N] [--pidfile FILE]

Sits between a client (walship, curl) and one S3 region on loopback.  It
follows HTTP/1.1 framing in both directions (request line and headers,
Content-Length and chunked bodies, 1xx interim responses, HEAD, keep-alive
and pipelined requests), so that it can act on request and response
boundaries.  Control it with one command per line on the control port (or
HTTP: GET /error/2/503 is the command "error 2 503"); every command answers
one line, "OK ..." or "ERR ...":

    delay MS [MS_BACK]   one-way latency client->server MS and server->client
                         MS_BACK (default MS): a round trip costs 2*MS
    error N [STATUS [CODE]]
                         answer the next N requests with STATUS (default 503;
                         S3 XML error body, Code SlowDown for 503,
                         InternalError for 500) without forwarding them
    reset N              reset (RST) the connection at each of the next N
                         requests, instead of forwarding it
    reset-conn N         reset the next N new connections as soon as accepted
    stall N              swallow the next N requests: never forwarded, never
                         answered; the connection stays open and silent
    stall-conn N         accept the next N new connections and never answer
    stall-for SECONDS    for SECONDS, every new connection and every request
                         is swallowed like that
    trickle N [MS]       forward the next N requests, but send each answer's
                         body one byte every MS milliseconds (default 250:
                         4 bytes/s; a slow loris server)
    listloop N [objects|uploads|both]
                         answer the next N ListObjectsV2 requests (unforwarded)
                         with a page without keys, IsTruncated true and a
                         continuation token never given before; and
                         ListMultipartUploads requests with a page without
                         uploads, the same key marker and a new upload-id
                         marker (both kinds unless one is named)
    truncate N K         cut the next N responses after K bytes of body (as
                         sent on the wire) and close the connection
    lock PATTERN...      answer deletes of keys whose path contains a PATTERN
                         the way S3 answers for an object version under
                         Object Lock: a DELETE gets 403 AccessDenied "Access
                         Denied because object protected by object lock."
                         (not forwarded: the object stays); a DeleteObjects
                         is forwarded as it is (its body is signed) and its
                         DeleteResult gets an <Error> entry with that code
                         and message for each such key (the server has
                         removed those)
    unlock               forget every lock pattern
    lose SUBSTR forward|blind|drop [STATUS [CODE]]
                         the next request whose request line contains SUBSTR
                         is forwarded and its answer cut after the head
                         (forward), forwarded and the client reset before
                         any byte of its answer (blind), or reset
                         unforwarded (drop); the next
                         one after it that matches is answered STATUS CODE
                         unforwarded (a retried CompleteMultipartUpload whose
                         first answer was lost: "lose ?uploadId= forward 404
                         NoSuchUpload")
    conditional on|off   emulate S3's conditional writes (what AWS does and
                         Swift's s3api does not): a PUT, or a multipart
                         completion, carrying "If-None-Match: *" is answered
                         412 PreconditionFailed when the key exists, else
                         forwarded without that header; writes to one key
                         are serialized, so two racing writers cannot both
                         succeed.  The proxy knows the keys written or
                         deleted through it while "on" (start tests with it)
    dark                 go dark: stop listening (new connections are refused)
                         and reset every open connection
    up                   listen again after "dark"
    pass                 clear every fault (error, reset, stall, truncate, trickle, listloop,
                         dark); close the connections held silent; latency stays
    clear                "pass" and no latency
    status               counters and settings as key=value pairs
    ping                 OK
    shutdown             exit (like SIGTERM)

Signals: SIGTERM/SIGINT exit cleanly, SIGUSR1 = dark, SIGUSR2 = pass.
Every address must be in 127.0.0.0/8.  Python 3 standard library only.
"""

import argparse
import asyncio
import re
import email.utils
import html
import ipaddress
import itertools
import os
import signal
import socket
import struct
import sys
import time
import urllib.parse

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024
MAX_HOLD = 600.0          # a connection held silent is closed after this

REASONS = {400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
           408: 'Request Timeout', 409: 'Conflict', 500: 'Internal Server Error',
           501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Slow Down',
           504: 'Gateway Timeout'}
CODES = {400: ('BadRequest', 'Bad request.'),
         403: ('AccessDenied', 'Access Denied'),
         404: ('NoSuchKey', 'The specified key does not exist.'),
         408: ('RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.'),
         409: ('OperationAborted', 'A conflicting conditional operation is currently in progress against this resource.'),
         500: ('InternalError', 'We encountered an internal error. Please try again.'),
         501: ('NotImplemented', 'A header you provided implies functionality that is not implemented.'),
         503: ('SlowDown', 'Please reduce your request rate.')}


def log(msg):
    sys.stderr.write('%s faultproxy[%d]: %s\n' % (
        time.strftime('%H:%M:%S'), os.getpid(), msg))
    sys.stderr.flush()


def loopback_addr(text):
    host, sep, port = text.rpartition(':')
    if not sep:
        raise argparse.ArgumentTypeError('%s: want HOST:PORT' % text)
    if host == 'localhost':
        host = '127.0.0.1'
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError('%s: not an IPv4 address' % host)
    if ip.version != 4 or ip not in ipaddress.ip_network('127.0.0.0/8'):
        raise argparse.ArgumentTypeError('%s: not in 127.0.0.0/8: refused' % host)
    try:
        port = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError('%s: bad port' % port)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError('%s: bad port' % port)
    return host, port


class ProtocolError(Exception):
    pass


class Reader:
    """Buffered reader over an asyncio StreamReader.  The pending read is
    shielded: waiting for data can be abandoned without losing any."""

    def __init__(self, stream):
        self.stream = stream
        self.buf = bytearray()
        self.eof = False
        self._task = None

    async def _more(self):
        """Read more data into buf; False at EOF."""
        if self.eof:
            return False
        if self._task is None:
            self._task = asyncio.ensure_future(self.stream.read(CHUNK))
        try:
            data = await asyncio.shield(self._task)
        except (ConnectionError, OSError):
            data = b''
        self._task = None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def fill(self):
        """True when data is buffered (waiting for some), False at EOF."""
        return bool(self.buf) or await self._more()

    def cancel(self):
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def readuntil(self, sep):
        """Bytes up to and including sep.  EOFError at a clean EOF (nothing
        buffered), ProtocolError at EOF in the middle or past MAX_HEAD."""
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError('line or head too long')
            start = max(0, len(self.buf) - len(sep) + 1)
            had = bool(self.buf)
            if not await self._more():
                if had:
                    raise ProtocolError('EOF inside a head or line')
                raise EOFError()

    async def read(self, n):
        """Up to n bytes; b'' at EOF."""
        if not await self.fill():
            return b''
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class DelayedWriter:
    """Writes chunks to a stream, each no earlier than the time it was read
    plus the current one-way delay, in order."""

    def __init__(self, writer, delay_fn):
        self.w = writer
        self.delay_fn = delay_fn
        self.q = asyncio.Queue(maxsize=512)
        self.last = 0.0
        self.failed = False
        self.task = asyncio.ensure_future(self._run())

    def _release(self, t0=None):
        loop = asyncio.get_running_loop()
        t = (loop.time() if t0 is None else t0) + self.delay_fn()
        self.last = max(self.last, t)
        return self.last

    async def write(self, data, t0=None):
        if data:
            await self.q.put((self._release(t0), data))

    async def close(self, how='fin'):
        """Queue a close after the data already queued ('fin' or 'rst')."""
        await self.q.put((self._release(), how))

    async def drained(self):
        await self.q.join()

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            t, data = await self.q.get()
            try:
                if self.failed:
                    continue
                wait = t - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data == 'fin':
                    close_fin(self.w)
                elif data == 'rst':
                    close_rst(self.w)
                else:
                    self.w.write(data)
                    await self.w.drain()
            except (ConnectionError, OSError):
                self.failed = True
            finally:
                self.q.task_done()

    def cancel(self):
        self.task.cancel()


def close_fin(writer):
    try:
        writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass


def close_rst(writer):
    try:
        sock = writer.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
        writer.transport.abort()
    except (ConnectionError, OSError, RuntimeError):
        pass


LOCK_MSG = 'Access Denied because object protected by object lock.'


def dechunk(raw):
    out, i = bytearray(), 0
    while True:
        j = raw.index(b'\r\n', i)
        size = int(raw[i:j].split(b';', 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2


def parse_head(head):
    lines = head.decode('latin-1').split('\r\n')
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ':' not in line:
            raise ProtocolError('bad header line %r' % line[:80])
        k, v = line.split(':', 1)
        headers.append((k.strip().lower(), v.strip()))
    return first, headers


def hget(headers, name):
    for k, v in headers:
        if k == name:
            return v
    return None


def body_framing(headers, default):
    """('chunked',), ('length', n) or default."""
    te = hget(headers, 'transfer-encoding')
    if te and 'chunked' in te.lower():
        return ('chunked',)
    cl = hget(headers, 'content-length')
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ProtocolError('bad Content-Length %r' % cl)
        if n < 0:
            raise ProtocolError('negative Content-Length')
        return ('length', n)
    return default


async def copy_body(reader, framing, out, limit=None):
    """Copy one body from reader to out (a coroutine function taking bytes,
    or None to discard).  With limit, stop after that many bytes and return
    False.  Returns True when the body was complete."""
    sent = 0

    async def emit(data):
        nonlocal sent
        if limit is not None and sent + len(data) > limit:
            data = data[:limit - sent]
            if out is not None and data:
                await out(data)
            sent = limit
            return False
        sent += len(data)
        if out is not None and data:
            await out(data)
        return True

    kind = framing[0]
    if kind == 'none':
        return True
    if kind == 'length':
        left = framing[1]
        while left > 0:
            data = await reader.read(min(left, CHUNK))
            if not data:
                raise ProtocolError('EOF inside a body')
            left -= len(data)
            if not await emit(data):
                return False
        return True
    if kind == 'chunked':
        while True:
            line = await reader.readuntil(b'\r\n')
            if not await emit(line):
                return False
            try:
                size = int(line.split(b';', 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError('bad chunk size line %r' % line[:40])
            if size == 0:
                while True:
                    t = await reader.readuntil(b'\r\n')
                    if not await emit(t):
                        return False
                    if t == b'\r\n':
                        return True
            left = size + 2
            while left > 0:
                data = await reader.read(min(left, CHUNK))
                if not data:
                    raise ProtocolError('EOF inside a chunk')
                left -= len(data)
                if not await emit(data):
                    return False
    if kind == 'close':
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return True
            if not await emit(data):
                return False
    raise ProtocolError('unknown framing %r' % (framing,))


class Proxy:
    def __init__(self, args):
        self.listen = args.listen
        self.target = args.target
        self.control = args.control
        self.delay_c2s = self.delay_s2c = args.delay_ms / 1000.0
        self.server = None
        self.ctl_server = None
        self.conns = set()
        self.held = set()
        self.stop_event = asyncio.Event()
        self.req_ids = itertools.count(1)
        self.conditional = False
        self.known = set()          # keys that exist (conditional mode)
        self.key_locks = {}
        self.locked = set()         # Object Lock patterns (lock/unlock)
        self.lose = None            # [substr, how, status, code, stage] (lose)
        self.clear_faults()
        self.n = dict.fromkeys((
            'connections', 'requests', 'forwarded', 'responses', 'errors',
            'resets', 'stalls', 'truncations', 'trickles', 'loops', 'refused_upstream',
            'bytes_up', 'bytes_down'), 0)

    def clear_faults(self):
        self.error_n = 0
        self.error_status = 503
        self.error_code = None
        self.reset_n = 0
        self.reset_conn_n = 0
        self.stall_n = 0
        self.stall_conn_n = 0
        self.stall_until = 0.0
        self.trunc_n = 0
        self.trunc_k = 0
        self.trickle_n = 0
        self.trickle_ms = 250
        self.listloop_n = 0
        self.listloop_what = 'both'
        self.lose = None

    def stalling(self):
        return time.monotonic() < self.stall_until

    # -- data path ----------------------------------------------------------

    async def start_listener(self):
        self.server = await asyncio.start_server(
            self.handle, self.listen[0], self.listen[1], reuse_address=True,
            backlog=128)

    async def handle(self, cr, cw):
        self.n['connections'] += 1
        if self.reset_conn_n > 0:
            self.reset_conn_n -= 1
            self.n['resets'] += 1
            log('connection reset at accept')
            close_rst(cw)
            return
        if self.stall_conn_n > 0 or self.stalling():
            if self.stall_conn_n > 0:
                self.stall_conn_n -= 1
            self.n['stalls'] += 1
            log('connection held silent at accept')
            await self.hold(Reader(cr), cw)
            return
        conn = Conn(self, cr, cw)
        self.conns.add(conn)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)

    async def hold(self, reader, cw, conn=None):
        """Keep a connection open, read and drop what comes, never answer;
        until the client closes, pass/clear/dark, or MAX_HOLD."""
        entry = (cw, asyncio.current_task())
        self.held.add(entry)
        try:
            async def drain():
                while True:
                    reader.buf.clear()
                    if not await reader.fill():
                        return
            await asyncio.wait_for(drain(), MAX_HOLD)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self.held.discard(entry)
            reader.cancel()
            close_fin(cw)

    def is_locked(self, path):
        path = urllib.parse.unquote(path)
        return any(pat in path for pat in self.locked)

    def error_response(self, status, code, method, close, message=None):
        rid = 'FP%012d' % next(self.req_ids)
        c, msg = CODES.get(status, ('ServiceUnavailable' if status == 503 else
                                    'InternalError' if status >= 500 else
                                    'InvalidRequest', 'Injected by faultproxy.'))
        if code:
            c = code
        if message:
            msg = message
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Error><Code>%s</Code><Message>%s</Message>'
                '<RequestId>%s</RequestId><HostId>faultproxy</HostId></Error>'
                % (c, msg, rid)).encode()
        head = ['HTTP/1.1 %d %s' % (status, REASONS.get(status, 'Error')),
                'Date: %s' % email.utils.formatdate(usegmt=True),
                'x-amz-request-id: %s' % rid,
                'Content-Type: application/xml',
                'Content-Length: %d' % len(body)]
        if close:
            head.append('Connection: close')
        out = ('\r\n'.join(head) + '\r\n\r\n').encode()
        return out if method == 'HEAD' else out + body

    def list_loop_page(self, close, uploads):
        """A ListObjectsV2 page without a key that says there is more, with
        a continuation token never handed out before; or a
        ListMultipartUploads page without an upload, with the same key
        marker and a new upload-id marker (listloop)."""
        n = next(self.req_ids)
        if uploads:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    '<Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>'
                    '<NextKeyMarker>fp-loop</NextKeyMarker><NextUploadIdMarker>fp-loop-%d</NextUploadIdMarker>'
                    '<MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>'
                    '</ListMultipartUploadsResult>' % n).encode()
        else:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    '<Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>'
                    '<IsTruncated>true</IsTruncated><NextContinuationToken>fp-loop-%d</NextContinuationToken>'
                    '</ListBucketResult>' % n).encode()
        head = ['HTTP/1.1 200 OK',
                'Date: %s' % email.utils.formatdate(usegmt=True),
                'x-amz-request-id: FP%012d' % n,
                'Content-Type: application/xml',
                'Content-Length: %d' % len(body)]
        if close:
            head.append('Connection: close')
        return ('\r\n'.join(head) + '\r\n\r\n').encode() + body

    # -- control ------------------------------------------------------------

    def status(self):
        parts = ['listening=%d' % (self.server is not None),
                 'conditional=%d' % self.conditional,
                 'locked=%d' % len(self.locked),
                 'delay_ms=%d/%d' % (round(self.delay_c2s * 1000), round(self.delay_s2c * 1000)),
                 'error=%d/%d' % (self.error_n, self.error_status),
                 'reset=%d' % self.reset_n, 'reset_conn=%d' % self.reset_conn_n,
                 'stall=%d' % self.stall_n, 'stall_conn=%d' % self.stall_conn_n,
                 'stall_for=%.1f' % max(0.0, self.stall_until - time.monotonic()),
                 'truncate=%d/%d' % (self.trunc_n, self.trunc_k),
                 'trickle=%d' % self.trickle_n, 'listloop=%d' % self.listloop_n,
                 'open=%d' % len(self.conns), 'held=%d' % len(self.held)]
        parts += ['%s=%d' % kv for kv in self.n.items()]
        return ' '.join(parts)

    def release_held(self):
        for cw, task in list(self.held):
            task.cancel()

    async def go_dark(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.conns):
            conn.abort()
        for cw, task in list(self.held):
            close_rst(cw)
            task.cancel()
        log('dark')

    async def come_up(self):
        if self.server is None:
            await self.start_listener()
            log('up')

    async def command(self, line):
        words = line.split()
        if not words:
            return 'ERR empty command'
        cmd, args = words[0].lower(), words[1:]

        def ints(lo, hi):
            if not lo <= len(args) <= hi:
                raise ValueError('%s takes %d to %d arguments' % (cmd, lo, hi))
            return [int(a) for a in args]

        try:
            if cmd == 'ping':
                return 'OK pong'
            if cmd == 'status':
                return 'OK ' + self.status()
            if cmd == 'delay':
                v = ints(1, 2)
                if min(v) < 0 or max(v) > 60000:
                    raise ValueError('delay out of range')
                self.delay_c2s = v[0] / 1000.0
                self.delay_s2c = (v[1] if len(v) > 1 else v[0]) / 1000.0
            elif cmd == 'error':
                if not 1 <= len(args) <= 3:
                    raise ValueError('error N [STATUS [CODE]]')
                n = int(args[0])
                st = int(args[1]) if len(args) > 1 else 503
                if not 400 <= st <= 599:
                    raise ValueError('status must be 4xx or 5xx')
                self.error_n, self.error_status = n, st
                self.error_code = args[2] if len(args) > 2 else None
            elif cmd == 'reset':
                self.reset_n = ints(1, 1)[0]
            elif cmd == 'reset-conn':
                self.reset_conn_n = ints(1, 1)[0]
            elif cmd == 'stall':
                self.stall_n = ints(1, 1)[0]
            elif cmd == 'stall-conn':
                self.stall_conn_n = ints(1, 1)[0]
            elif cmd == 'stall-for':
                if len(args) != 1:
                    raise ValueError('stall-for SECONDS')
                self.stall_until = time.monotonic() + float(args[0])
            elif cmd == 'truncate':
                self.trunc_n, self.trunc_k = ints(2, 2)
            elif cmd == 'trickle':
                v = ints(1, 2)
                self.trickle_n = v[0]
                self.trickle_ms = v[1] if len(v) > 1 else 250
            elif cmd == 'listloop':
                if not 1 <= len(args) <= 2 or args[1:] not in ([], ['objects'], ['uploads'], ['both']):
                    raise ValueError('listloop N [objects|uploads|both]')
                self.listloop_n = int(args[0])
                self.listloop_what = args[1] if len(args) > 1 else 'both'
            elif cmd == 'lock':
                if not args:
                    raise ValueError('lock PATTERN...')
                self.locked.update(args)
            elif cmd == 'unlock':
                self.locked.clear()
            elif cmd == 'lose':
                if not 2 <= len(args) <= 4 or args[1] not in ('forward', 'blind', 'drop'):
                    raise ValueError('lose SUBSTR forward|blind|drop [STATUS [CODE]]')
                self.lose = [args[0], args[1], int(args[2]) if len(args) > 2 else 0,
                             args[3] if len(args) > 3 else None, 0]
            elif cmd == 'conditional':
                if args not in (['on'], ['off']):
                    raise ValueError('conditional on|off')
                self.conditional = args[0] == 'on'
            elif cmd == 'dark':
                await self.go_dark()
            elif cmd == 'up':
                await self.come_up()
            elif cmd in ('pass', 'clear'):
                self.clear_faults()
                if cmd == 'clear':
                    self.delay_c2s = self.delay_s2c = 0.0
                self.release_held()
                await self.come_up()
            elif cmd == 'shutdown':
                self.stop_event.set()
            else:
                return 'ERR unknown command %r' % cmd
        except ValueError as e:
            return 'ERR %s' % e
        except OSError as e:
            return 'ERR %s' % e
        log('control: %s' % ' '.join(words))
        return 'OK ' + self.status()

    async def handle_control(self, r, w):
        try:
            while True:
                try:
                    line = await asyncio.wait_for(r.readline(), 30)
                except asyncio.TimeoutError:
                    break
                if not line:
                    break
                text = line.decode('latin-1').strip()
                if text.split(' ', 1)[0] in ('GET', 'POST', 'PUT'):
                    # HTTP: the path is the command, "/" separates words.
                    while True:
                        h = await asyncio.wait_for(r.readline(), 10)
                        if h in (b'\r\n', b'\n', b''):
                            break
                    path = text.split(' ')[1] if ' ' in text else '/'
                    path = urllib.parse.urlsplit(path).path
                    cmd = ' '.join(urllib.parse.unquote_plus(p)
                                   for p in path.split('/') if p)
                    reply = await self.command(cmd)
                    body = (reply + '\n').encode()
                    st = '200 OK' if reply.startswith('OK') else '400 Bad Request'
                    w.write(('HTTP/1.1 %s\r\nContent-Type: text/plain\r\n'
                             'Content-Length: %d\r\nConnection: close\r\n\r\n'
                             % (st, len(body))).encode() + body)
                    await w.drain()
                    break
                if not text:
                    continue
                reply = await self.command(text)
                w.write((reply + '\n').encode())
                await w.drain()
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            close_fin(w)

    async def main(self, pidfile):
        loop = asyncio.get_running_loop()
        await self.start_listener()
        self.ctl_server = await asyncio.start_server(
            self.handle_control, self.control[0], self.control[1],
            reuse_address=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGUSR1,
                                lambda: asyncio.ensure_future(self.command('dark')))
        loop.add_signal_handler(signal.SIGUSR2,
                                lambda: asyncio.ensure_future(self.command('pass')))
        if pidfile:
            tmp = pidfile + '.tmp'
            with open(tmp, 'w') as f:
                f.write('%d\n' % os.getpid())
            os.rename(tmp, pidfile)
        log('listening on %s:%d -> %s:%d, control %s:%d, delay %d ms' % (
            self.listen + self.target + self.control + (round(self.delay_c2s * 1000),)))
        await self.stop_event.wait()
        log('stopping')
        self.ctl_server.close()
        await self.go_dark()
        for conn in list(self.conns):
            conn.abort()
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass


class Conn:
    """One client connection and its upstream connection."""

    def __init__(self, proxy, cr, cw):
        self.p = proxy
        self.cr, self.cw = Reader(cr), cw
        self.ur = self.uw = None
        self.to_client = self.to_up = None
        self.expect = asyncio.Queue()
        self.tasks = []
        self.holding = False
        self.done = asyncio.Event()
        self.locks = []             # conditional writes awaiting their answer

    def abort(self):
        """Reset both sides at once (dark, shutdown)."""
        for dw in (self.to_client, self.to_up):
            if dw is not None:
                dw.failed = True
        close_rst(self.cw)
        if self.uw is not None:
            close_rst(self.uw)
        self.done.set()

    async def run(self):
        p = self.p
        try:
            ur, uw = await asyncio.wait_for(
                asyncio.open_connection(p.target[0], p.target[1]), 10)
        except (OSError, asyncio.TimeoutError) as e:
            p.n['refused_upstream'] += 1
            log('upstream %s:%d: %s: resetting the client' % (p.target + (e,)))
            close_rst(self.cw)
            return
        self.ur, self.uw = Reader(ur), uw
        self.to_client = DelayedWriter(self.cw, lambda: p.delay_s2c)
        self.to_up = DelayedWriter(uw, lambda: p.delay_c2s)
        self.tasks = [asyncio.ensure_future(self.c2s()),
                      asyncio.ensure_future(self.s2c())]
        try:
            await self.done.wait()
        finally:
            for t in self.tasks:
                t.cancel()
            for t in self.tasks:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
            self.cr.cancel()
            self.ur.cancel()
            # Let queued bytes and closes go out (bounded), then make sure.
            for dw in (self.to_client, self.to_up):
                try:
                    await asyncio.wait_for(dw.drained(), 5)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    pass
                dw.cancel()
            close_fin(self.cw)
            close_fin(self.uw)
            for lock in self.locks:
                lock.release()
            self.locks = []

    async def finish(self, how_client='fin', how_up='fin'):
        await self.to_client.close(how_client)
        await self.to_up.close(how_up)
        self.done.set()

    async def c2s(self):
        p = self.p
        try:
            while True:
                try:
                    head = await self.cr.readuntil(b'\r\n\r\n')
                except EOFError:
                    # Client closed between requests: finish the responses.
                    await self.expect.put(('eof',))
                    return
                while head.startswith(b'\r\n'):
                    head = head[2:]
                if not head:
                    continue
                t0 = asyncio.get_running_loop().time()
                first, headers = parse_head(head)
                parts = first.split(' ')
                if len(parts) != 3 or not parts[2].startswith('HTTP/1.'):
                    raise ProtocolError('bad request line %r' % first[:80])
                method = parts[0].upper()
                framing = body_framing(headers, ('length', 0))
                p.n['requests'] += 1
                conn_hdr = (hget(headers, 'connection') or '').lower()
                close_after = parts[2] == 'HTTP/1.0' or 'close' in conn_hdr
                expect100 = (hget(headers, 'expect') or '').lower() == '100-continue'
                if p.reset_n > 0:
                    p.reset_n -= 1
                    p.n['resets'] += 1
                    log('reset at %s %s' % (method, parts[1][:100]))
                    close_rst(self.cw)
                    close_rst(self.uw)
                    self.done.set()
                    return
                if p.stall_n > 0 or p.stalling():
                    if p.stall_n > 0:
                        p.stall_n -= 1
                    p.n['stalls'] += 1
                    log('stalled %s %s' % (method, parts[1][:100]))
                    self.holding = True
                    await p.hold(self.cr, self.cw)
                    self.done.set()
                    return
                lose_cut = False
                if p.lose is not None and p.lose[0] in first:
                    sub, how, lst, lcode, stage = p.lose
                    if stage == 0:
                        p.lose[4] = 1
                        if how == 'drop':
                            p.n['resets'] += 1
                            log('lose: reset %s %s unforwarded' % (method, parts[1][:100]))
                            close_rst(self.cw)
                            close_rst(self.uw)
                            self.done.set()
                            return
                        log('lose: forwarding %s %s, cutting its answer' % (method, parts[1][:100]))
                        lose_cut = 'blind' if how == 'blind' else True
                    else:
                        p.lose = None
                        if lst:
                            p.n['errors'] += 1
                            log('lose: answered %d to %s %s' % (lst, method, parts[1][:100]))
                            resp = p.error_response(lst, lcode, method, close_after)
                            await self.expect.put(('inject', resp, t0 + p.delay_c2s, close_after))
                            if close_after:
                                return
                            await copy_body(self.cr, framing, None)
                            continue
                if p.error_n > 0:
                    p.error_n -= 1
                    p.n['errors'] += 1
                    log('answered %d to %s %s' % (p.error_status, method, parts[1][:100]))
                    if expect100:
                        close_after = True
                    resp = p.error_response(p.error_status, p.error_code, method,
                                            close_after)
                    await self.expect.put(('inject', resp, t0 + p.delay_c2s, close_after))
                    if close_after:
                        return
                    await copy_body(self.cr, framing, None)
                    continue
                path, _, query = parts[1].partition('?')
                qwords = [q.partition('=')[0] for q in query.split('&')]
                loop_objects = 'list-type' in qwords and p.listloop_what != 'uploads'
                loop_uploads = 'uploads' in qwords and p.listloop_what != 'objects'
                if p.listloop_n > 0 and method == 'GET' and (loop_objects or loop_uploads):
                    p.listloop_n -= 1
                    p.n['loops'] += 1
                    resp = p.list_loop_page(close_after, 'uploads' in qwords)
                    await self.expect.put(('inject', resp, t0 + p.delay_c2s, close_after))
                    if close_after:
                        return
                    await copy_body(self.cr, framing, None)
                    continue
                if p.locked and method == 'DELETE' and not query and p.is_locked(path):
                    p.n['errors'] += 1
                    log('403 Object Lock to DELETE %s' % path[:100])
                    resp = p.error_response(403, 'AccessDenied', method, close_after, LOCK_MSG)
                    await self.expect.put(('inject', resp, t0 + p.delay_c2s, close_after))
                    if close_after:
                        return
                    await copy_body(self.cr, framing, None)
                    continue
                lockkeys = None
                if (p.locked and method == 'POST' and 'delete' in query.split('&') + [
                        q.partition('=')[0] for q in query.split('&')] and framing[0] == 'length'):
                    body = bytearray()

                    async def keep(data):
                        body.extend(data)
                    await copy_body(self.cr, framing, keep)
                    keys = [html.unescape(k) for k in
                            re.findall(r'<Key>(.*?)</Key>', body.decode('utf-8', 'replace'))]
                    lockkeys = [k for k in keys if any(pat in k for pat in p.locked)]
                    pending_body = bytes(body)
                else:
                    pending_body = None
                cond = None
                if p.conditional:
                    path, _, query = parts[1].partition('?')
                    writes = ((method == 'PUT' and 'partNumber=' not in query) or
                              (method == 'POST' and 'uploadId=' in query))
                    deletes = method == 'DELETE' and not query
                    if writes and (hget(headers, 'if-none-match') or '').strip() == '*':
                        lock = p.key_locks.setdefault(path, asyncio.Lock())
                        await lock.acquire()
                        if path in p.known:
                            lock.release()
                            p.n['errors'] += 1
                            log('412 to %s %s: the key exists' % (method, path[:100]))
                            resp = p.error_response(412, 'PreconditionFailed', method, close_after)
                            await self.expect.put(('inject', resp, t0 + p.delay_c2s, close_after))
                            if close_after:
                                return
                            await copy_body(self.cr, framing, None)
                            continue
                        self.locks.append(lock)
                        head = re.sub(rb'(?im)^if-none-match:[^\r\n]*\r\n', b'', head)
                        cond = ('write', path, lock)
                    elif writes:
                        cond = ('write', path, None)
                    elif deletes:
                        cond = ('delete', path, None)
                trickle = p.trickle_ms / 1000.0 if p.trickle_n > 0 else None
                if trickle:
                    p.trickle_n -= 1
                    p.n['trickles'] += 1
                    log('trickling the answer to %s %s' % (method, parts[1][:100]))
                trunc = None
                if p.trunc_n > 0:
                    p.trunc_n -= 1
                    trunc = p.trunc_k
                if lose_cut:
                    trunc = -1 if lose_cut == 'blind' else 0
                p.n['forwarded'] += 1
                await self.expect.put(('forward', method, trunc, cond, lockkeys, trickle))
                await self.to_up.write(head, t0)
                p.n['bytes_up'] += len(head)
                if pending_body is not None:
                    await self.to_up.write(pending_body)
                    p.n['bytes_up'] += len(pending_body)
                    if close_after:
                        return
                    continue

                async def up(data):
                    p.n['bytes_up'] += len(data)
                    await self.to_up.write(data)
                if not await copy_body(self.cr, framing, up):
                    return
                if close_after:
                    return
        except ProtocolError as e:
            log('request stream: %s: closing' % e)
            await self.finish('rst', 'fin')
        except (ConnectionError, OSError) as e:
            log('request stream: %s' % e)
            self.done.set()

    async def s2c(self):
        p = self.p
        loop = asyncio.get_running_loop()
        get = peek = None
        try:
            while True:
                # Idle: wait for the next expected response, but notice an
                # upstream that closes (or talks) first.
                get = asyncio.ensure_future(self.expect.get())
                peek = asyncio.ensure_future(self.ur.fill())
                await asyncio.wait({get, peek}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    peek_ok = peek.result()
                    if not peek_ok:
                        # Upstream closed while idle: close the client too,
                        # unless a request is being held silent.
                        if not self.holding:
                            await self.finish()
                        return
                    exp = await self.expect.get()
                else:
                    peek.cancel()
                    exp = get.result()
                if exp[0] == 'eof':
                    await self.finish()
                    return
                if exp[0] == 'inject':
                    _, resp, t_at_server, close_after = exp
                    await self.to_client.write(resp, max(t_at_server, loop.time()))
                    p.n['responses'] += 1
                    if close_after:
                        await self.linger_close()
                        return
                    continue
                _, method, trunc, cond, lockkeys, trickle = exp
                while True:
                    head = await self.ur.readuntil(b'\r\n\r\n')
                    first, headers = parse_head(head)
                    parts = first.split(' ', 2)
                    if len(parts) < 2 or not parts[0].startswith('HTTP/1.'):
                        raise ProtocolError('bad status line %r' % first[:80])
                    status = int(parts[1])
                    if trunc == -1:
                        # lose ... blind: the request was carried out, and
                        # not one byte of its answer reaches the client
                        p.n['truncations'] += 1
                        log('lose: reset the client before the answer to %s' % method)
                        await self.finish('rst', 'rst')
                        return
                    if lockkeys and status == 200:
                        head = await self.lock_errors(head, headers, lockkeys)
                        if head is None:
                            return
                        p.n['responses'] += 1
                        break
                    await self.to_client.write(head)
                    p.n['bytes_down'] += len(head)
                    if 100 <= status < 200 and status != 101:
                        continue
                    break
                if lockkeys and status == 200:
                    continue
                if cond is not None:
                    kind, path, lock = cond
                    if kind == 'write' and status == 200:
                        p.known.add(path)
                    elif kind == 'delete' and 200 <= status < 300:
                        p.known.discard(path)
                    if lock is not None and lock in self.locks:
                        self.locks.remove(lock)
                        lock.release()
                p.n['responses'] += 1
                if method == 'HEAD' or status in (204, 304) or status == 101:
                    framing = ('none',)
                else:
                    framing = body_framing(headers, ('close',))

                async def down(data):
                    if not trickle:
                        p.n['bytes_down'] += len(data)
                        await self.to_client.write(data)
                        return
                    for i in range(len(data)):
                        # one byte at a time, until the client gives up
                        if self.to_client.failed:
                            raise ConnectionError('the client left a trickled answer')
                        p.n['bytes_down'] += 1
                        await self.to_client.write(data[i:i + 1])
                        await self.to_client.drained()
                        await asyncio.sleep(trickle)
                complete = await copy_body(self.ur, framing, down, trunc)
                if not complete:
                    p.n['truncations'] += 1
                    log('truncated a response to %s after %d body bytes' % (method, trunc))
                    await self.finish('fin', 'rst')
                    return
                conn_hdr = (hget(headers, 'connection') or '').lower()
                if framing[0] == 'close' or 'close' in conn_hdr or parts[0] == 'HTTP/1.0':
                    await self.finish()
                    return
        except ProtocolError as e:
            log('response stream: %s: closing' % e)
            await self.finish()
        except (ConnectionError, OSError) as e:
            log('response stream: %s' % e)
            self.done.set()
        finally:
            for t in (get, peek):
                if t is not None and not t.done():
                    t.cancel()

    async def lock_errors(self, head, headers, lockkeys):
        """Send a DeleteResult with an Object Lock <Error> per locked key
        added; None when the upstream closed."""
        body = bytearray()

        async def keep(data):
            body.extend(data)
        framing = body_framing(headers, ('close',))
        if framing[0] == 'chunked':
            raw = bytearray()

            async def keep_raw(data):
                raw.extend(data)
            await copy_body(self.ur, framing, keep_raw)
            body = dechunk(bytes(raw))
        else:
            await copy_body(self.ur, framing, keep)
        text = bytes(body).decode('utf-8', 'replace')
        errs = ''.join('<Error><Key>%s</Key><Code>AccessDenied</Code><Message>%s</Message></Error>'
                       % (html.escape(k, quote=False), LOCK_MSG) for k in lockkeys)
        if '</DeleteResult>' in text:
            text = text.replace('</DeleteResult>', errs + '</DeleteResult>')
        elif '<DeleteResult' in text and text.rstrip().endswith('/>'):
            text = re.sub(r'<DeleteResult([^>]*)/>', r'<DeleteResult\1>' + errs.replace('\\', '\\\\') +
                          '</DeleteResult>', text)
        out = text.encode()
        lines = [ln for ln in head.decode('latin-1').split('\r\n')
                 if ln and not ln.lower().startswith(('content-length:', 'transfer-encoding:'))]
        lines.append('Content-Length: %d' % len(out))
        log('DeleteObjects: %d keys answered as under Object Lock' % len(lockkeys))
        await self.to_client.write(('\r\n'.join(lines) + '\r\n\r\n').encode() + out)
        if framing[0] == 'close':
            await self.finish()
            return None
        return head

    async def linger_close(self):
        """After an injected final answer with Connection: close: half-close,
        drop what the client still sends (its body) for a while, then close,
        so that the client reads the answer instead of a reset."""
        await self.to_client.drained()
        try:
            if self.cw.can_write_eof():
                self.cw.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass

        async def drain():
            while True:
                self.cr.buf.clear()
                if not await self.cr.fill():
                    return
        try:
            await asyncio.wait_for(drain(), 2)
        except asyncio.TimeoutError:
            pass
        await self.finish('fin', 'fin')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--listen', type=loopback_addr, required=True)
    ap.add_argument('--target', type=loopback_addr, required=True)
    ap.add_argument('--control', type=loopback_addr, required=True)
    ap.add_argument('--delay-ms', type=int, default=0)
    ap.add_argument('--pidfile')
    args = ap.parse_args()
    if args.delay_ms < 0:
        ap.error('--delay-ms must be >= 0')

    async def run():
        await Proxy(args).main(args.pidfile)
    try:
        asyncio.run(run())
    except OSError as e:
        log('fatal: %s' % e)
        sys.exit(1)


if __name__ == '__main__':
    main()
