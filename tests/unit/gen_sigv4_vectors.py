#!/usr/bin/env python3
"""Print SigV4 test vectors for test_s3_sign.c, signed by botocore.

botocore's S3SigV4Auth signs each request with fixed credentials at a
fixed time (us-east-1, service s3).  The output is a C table to paste
into tests/unit/test_s3_sign.c.  Nothing is sent anywhere: the requests
are only signed.

    python3 tests/unit/gen_sigv4_vectors.py > /tmp/vectors.inc
"""

import datetime
from unittest import mock
from urllib.parse import quote

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ACCESS_KEY = 'AKIDEXAMPLE'
SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
SESSION_TOKEN = 'FQoGZXIvYXdzEXAMPLE//token+with/slashes='
REGION = 'us-east-1'
SERVICE = 's3'
NOW = datetime.datetime(2026, 12, 4, 7, 0, 0)
ENDPOINT = 'http://127.0.0.1:9000'


def encode_key(key):
    """Encode an object key as botocore does for a path (safe '/~')."""
    return quote(key, safe='/~')


def encode_query(params):
    """Encode (name, value) pairs in the given order, as sent on the wire."""
    return '&'.join(
        quote(k, safe='-_.~') + ('=' + quote(v, safe='-_.~')
                                 if v is not None else '')
        for k, v in params)


VECTORS = [
    {
        'name': 'list_objects_v2',
        'method': 'GET',
        'path': '/bucket',
        'params': [
            ('list-type', '2'),
            ('prefix', 'dir/sub dir/'),
            ('delimiter', '/'),
            ('encoding-type', 'url'),
            ('continuation-token', '1a+B/c=d=='),
        ],
        'headers': [],
    },
    {
        'name': 'get_object_range',
        'method': 'GET',
        'path': '/bucket/' + encode_key('dir/a b+c%d \u00e9.txt'),
        'params': [],
        'headers': [('Range', 'bytes=0-1048575')],
    },
    {
        'name': 'head_object',
        'method': 'HEAD',
        'path': '/bucket/' + encode_key('dir/file~1.bin'),
        'params': [],
        'headers': [],
    },
    {
        'name': 'put_object_metadata',
        'method': 'PUT',
        'path': '/bucket/' + encode_key('dir/new file.txt'),
        'params': [],
        'headers': [
            ('Content-Length', '11'),
            ('x-amz-meta-mode', '100644'),
            ('x-amz-meta-uid', '1000'),
            ('x-amz-meta-gid', '1000'),
            ('x-amz-meta-mtime', '1796367600.123456789'),
        ],
        'body': b'hello world',
        'unsigned': True,
    },
    {
        'name': 'upload_part',
        'method': 'PUT',
        'path': '/bucket/' + encode_key('big/file.bin'),
        'params': [
            ('uploadId', 'VXBsb2FkIElE+Zm9y/IDY=='),
            ('partNumber', '12'),
        ],
        'headers': [('Content-Length', '13')],
        'body': b'part payload\n',
    },
    {
        'name': 'copy_object',
        'method': 'PUT',
        'path': '/bucket/' + encode_key('dir/renamed name.txt'),
        'params': [],
        'headers': [
            ('x-amz-copy-source',
             '/bucket/' + encode_key('dir/old name+1.txt')),
            ('x-amz-metadata-directive', 'COPY'),
        ],
    },
    {
        'name': 'initiate_multipart',
        'method': 'POST',
        'path': '/bucket/' + encode_key('big/file.bin'),
        'params': [('uploads', None)],
        'headers': [],
    },
    {
        'name': 'session_token_trim',
        'method': 'GET',
        'path': '/bucket/' + encode_key('a'),
        'params': [],
        'headers': [('X-Amz-Meta-Note', '  two   spaces  inside ')],
        'token': True,
    },
    {
        'name': 'repeated_header',
        'method': 'GET',
        'path': '/bucket/' + encode_key('b'),
        'params': [('versionId', 'v1'), ('versionId', 'v0')],
        'headers': [],
        'repeated': [('X-Amz-Meta-Tag', 'one'), ('x-amz-meta-tag', ' two')],
    },
]


def sign(vector):
    """Sign one vector; return (wire headers, Authorization, payload)."""
    query = encode_query(vector['params'])
    url = ENDPOINT + vector['path'] + ('?' + query if query else '')
    request = AWSRequest(method=vector['method'], url=url,
                         headers=dict(vector['headers']),
                         data=vector.get('body', b''))
    for name, value in vector.get('repeated', []):
        # HTTPHeaders keeps every value set under the same name.
        request.headers[name] = value
    if vector.get('unsigned'):
        request.context['client_config'] = Config(
            s3={'payload_signing_enabled': False})
    credentials = Credentials(ACCESS_KEY, SECRET_KEY,
                              SESSION_TOKEN if vector.get('token') else None)
    auth = botocore.auth.S3SigV4Auth(credentials, SERVICE, REGION)
    with mock.patch('botocore.auth.get_current_datetime', return_value=NOW):
        auth.add_auth(request)

    signed = auth.headers_to_sign(request)
    headers = [('host', signed['host'])]
    for name, value in request.headers.items():
        if name.lower() != 'authorization':
            headers.append((name, value))
    return (query, headers, request.headers['Authorization'],
            request.headers['X-Amz-Content-SHA256'])


def c_tokens(text):
    """Return the C escape of each UTF-8 byte of text."""
    tokens = []
    for byte in text.encode('utf-8'):
        char = chr(byte)
        if char in '"\\':
            tokens.append('\\' + char)
        elif 32 <= byte < 127:
            tokens.append(char)
        else:
            tokens.append('\\%03o' % byte)
    return tokens


def c_string(text, width=52):
    """Quote text as C string literals of at most width characters each.

    Returns one literal, or several separated by a newline that the caller
    indents; an octal escape is followed by a literal break so that a
    following hex digit cannot extend it.
    """
    pieces, current = [], ''
    for token in c_tokens(text):
        if len(current) + len(token) > width:
            pieces.append(current)
            current = ''
        current += token
        if token.startswith('\\') and len(token) == 4:
            pieces.append(current)
            current = ''
    if current or not pieces:
        pieces.append(current)
    return pieces


def print_field(indent, name, text):
    """Print '.name = "...",' wrapping long text over several lines."""
    pieces = c_string(text)
    if len(pieces) == 1 and len(pieces[0]) < 40:
        print('%s.%s = "%s",' % (indent, name, pieces[0]))
        return
    print('%s.%s =' % (indent, name))
    for i, piece in enumerate(pieces):
        end = ',' if i == len(pieces) - 1 else ''
        print('%s\t"%s"%s' % (indent, piece, end))


def print_header(name, value):
    """Print one { name, value } row of the header table."""
    value_pieces = c_string(value, 44)
    if len(value_pieces) == 1 and len(name) + len(value_pieces[0]) < 42:
        print('\t\t\t{ "%s", "%s" },' % (c_string(name)[0],
                                          value_pieces[0]))
        return
    print('\t\t\t{ "%s",' % c_string(name)[0])
    for i, piece in enumerate(value_pieces):
        end = ' },' if i == len(value_pieces) - 1 else ''
        print('\t\t\t  "%s"%s' % (piece, end))


def main():
    print('/* Generated by tests/unit/gen_sigv4_vectors.py with botocore %s:'
          % botocore.__version__)
    print(' * S3SigV4Auth, time %s, region %s, service %s. */'
          % (NOW.strftime('%Y%m%dT%H%M%SZ'), REGION, SERVICE))
    for vector in VECTORS:
        query, headers, authorization, payload = sign(vector)
        print('\t{')
        print_field('\t\t', 'name', vector['name'])
        print_field('\t\t', 'method', vector['method'])
        print_field('\t\t', 'path', vector['path'])
        print_field('\t\t', 'query', query)
        print('\t\t.headers = {')
        for name, value in headers:
            print_header(name, value)
        print('\t\t},')
        print('\t\t.nheaders = %d,' % len(headers))
        print_field('\t\t', 'payload', payload)
        print_field('\t\t', 'authorization', authorization)
        print('\t},')


if __name__ == '__main__':
    main()
