#!/usr/bin/env python3
"""s3odd: a read-only S3 stand-in over a directory, answering some keys the
way a misbehaving server or an intermediary in front of S3 would.

    s3odd.py --listen 127.0.0.1:PORT --root DIR --bucket NAME [--prefix P]
             [--odd KIND=SUBSTR]... [--pidfile FILE]

GET and HEAD of /BUCKET/P/KEY (path style) serve the file DIR/KEY with its
Content-Length and an ETag (the MD5 of its bytes); a missing file is S3's
404 NoSuchKey.  ListObjectsV2 (?list-type=2) lists DIR under the prefix in
one page.  Signatures are not checked.  A key containing SUBSTR of an --odd
KIND=SUBSTR is answered oddly instead, by KIND:

    bare404     404 with an HTML body, no S3 error code (a proxy, a load
                balancer, a web server at a wrong endpoint)
    partial206  206 with the first half of the file and its Content-Range,
                to a GET that asked for no range
    cut         the first GET without Range announces the whole object but
                sends half of it and closes the connection (a reset)
    shiftrange  a ranged GET gets 206 for a range starting 1 byte early

    loop        (a listing whose prefix contains SUBSTR) each page says it
                is truncated and hands back the same NextContinuationToken
    uploadloop  (a ListMultipartUploads whose prefix contains SUBSTR) each
                page says it is truncated and hands back the markers it was
                asked with (without SUBSTR: no uploads, not truncated)  127.0.0.0/8 only;
Python 3 standard library only.
"""

import argparse
import hashlib
import http.server
import ipaddress
import os
import re
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', required=True)
    ap.add_argument('--root', required=True)
    ap.add_argument('--bucket', required=True)
    ap.add_argument('--prefix', default='')
    ap.add_argument('--odd', action='append', default=[])
    ap.add_argument('--pidfile')
    a = ap.parse_args()
    odd = [tuple(o.split('=', 1)) for o in a.odd]

    cut_done = set()

    def is_odd(kind, key):
        return any(k == kind and sub in key for k, sub in odd)
    host, port = a.listen.rsplit(':', 1)
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit('s3odd: loopback addresses only')
    pre = a.prefix.strip('/') + '/' if a.prefix.strip('/') else ''

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, fmt, *args):
            pass

        def answer(self, status, body, ctype='application/xml', extra=()):
            self.send_response(status)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(body)

        def error(self, status, code):
            self.answer(status, ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
                                 '<Message>s3odd</Message></Error>' % code).encode())

        def listing(self, q):
            prefix = q.get('prefix', [''])[0]
            token = q.get('continuation-token', [None])[0]
            loop = is_odd('loop', prefix)
            keys = []
            for d, _, files in os.walk(a.root):
                for f in files:
                    k = pre + os.path.relpath(os.path.join(d, f), a.root)
                    if k.startswith(prefix) and '.walship-tmp-' not in k:
                        keys.append((k, os.path.getsize(os.path.join(d, f))))
            if loop:
                keys = [(prefix + 'a', 1)] if token is None else [(prefix + 'b', 1)]
            body = ['<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>%s</Name>' % a.bucket,
                    '<IsTruncated>%s</IsTruncated>' % ('true' if loop else 'false')]
            if loop:
                body.append('<NextContinuationToken>same</NextContinuationToken>')
            for k, size in sorted(keys):
                body.append('<Contents><Key>%s</Key><Size>%d</Size>'
                            '<LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>' % (k, size))
            body.append('</ListBucketResult>')
            self.answer(200, ''.join(body).encode())

        def uploads(self, q):
            prefix = q.get('prefix', [''])[0]
            loop = is_odd('uploadloop', prefix)
            body = ['<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>%s</Bucket>' % a.bucket,
                    '<IsTruncated>%s</IsTruncated>' % ('true' if loop else 'false')]
            if loop:
                body.append('<NextKeyMarker>%sk</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker>' % prefix)
            body.append('</ListMultipartUploadsResult>')
            self.answer(200, ''.join(body).encode())

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
            path = urllib.parse.unquote(u.path)
            if path.rstrip('/') == '/' + a.bucket and 'list-type' in q:
                return self.listing(q)
            if path.rstrip('/') == '/' + a.bucket and 'uploads' in q:
                return self.uploads(q)
            if not path.startswith('/%s/%s' % (a.bucket, pre)):
                return self.error(404, 'NoSuchKey')
            key = path[len('/%s/%s' % (a.bucket, pre)):]
            if is_odd('bare404', key):
                return self.answer(404, b'<html><body><h1>404 Not Found</h1></body></html>\n', 'text/html')
            f = os.path.join(a.root, key)
            if '..' in key.split('/') or not os.path.isfile(f):
                return self.error(404, 'NoSuchKey')
            with open(f, 'rb') as fh:
                data = fh.read()
            etag = [('ETag', '"%s"' % hashlib.md5(data).hexdigest())]
            rng = self.headers.get('Range')
            if is_odd('partial206', key) and rng is None and len(data) > 1:
                half = len(data) // 2
                return self.answer(206, data[:half], 'application/octet-stream',
                                   etag + [('Content-Range', 'bytes 0-%d/%d' % (half - 1, len(data)))])
            if rng is None and is_odd('cut', key) and key not in cut_done:
                cut_done.add(key)
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.send_header(*etag[0])
                self.end_headers()
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            if rng is None:
                return self.answer(200, data, 'application/octet-stream', etag)
            m = re.fullmatch(r'bytes=(\d+)-(\d*)', rng)
            if not m:
                return self.error(400, 'InvalidRange')
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data):
                return self.error(416, 'InvalidRange')
            if is_odd('shiftrange', key) and start > 0:
                start, end = start - 1, end - 1
            return self.answer(206, data[start:end + 1], 'application/octet-stream',
                               etag + [('Content-Range', 'bytes %d-%d/%d' % (start, end, len(data)))])

    srv = http.server.ThreadingHTTPServer((host, int(port)), H)
    if a.pidfile:
        with open(a.pidfile + '.tmp', 'w') as fh:
            fh.write('%d\n' % os.getpid())
        os.rename(a.pidfile + '.tmp', a.pidfile)
    srv.serve_forever()


if __name__ == '__main__':
    main()
