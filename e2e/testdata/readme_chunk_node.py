# The original BlastBeat README's "simple python backend" with its
# "ping/pong" consumer and its uwsgi_to_dict, ported from Python 2 to
# Python 3 syntax only (print function, bytes for identities, message
# types and bodies), and extended minimally to answer each request with
# the README's own chunk example. The README's ping snippet calls
# zmq.send(...), which never existed; it is socket.send(...) here.
#
# usage: readme_chunk_node.py ENDPOINT IDENTITY
import sys
import struct

import zmq


def uwsgi_to_dict(msg):
    (ulen, ) = struct.unpack('<H', msg[1:3])
    pos = 4
    env = {}
    while pos < ulen:
        (klen,) = struct.unpack('<H', msg[pos:pos+2])
        k = msg[pos+2:pos+2+klen]
        pos += 2+klen
        (vlen,) = struct.unpack('<H', msg[pos:pos+2])
        v = msg[pos+2:pos+2+vlen]
        pos += 2+vlen
        env[k] = v
    return env


endpoint, identity = sys.argv[1], sys.argv[2]

context = zmq.Context()
# create the dealer socket
socket = context.socket(zmq.DEALER)
# authorize it setting the identity
socket.setsockopt(zmq.IDENTITY, identity.encode())
# connect to blastbeat
socket.connect(endpoint)

# start receiving messages
while True:
    # receive a blastbeat message
    sid, msg_type, msg_body = socket.recv_multipart()
    print('received a message of type %s' % msg_type)
    if msg_type == b'ping':
        socket.send(sid, zmq.SNDMORE)
        socket.send(b'pong', zmq.SNDMORE)
        socket.send(b'')
        continue
    if msg_type != b'uwsgi':
        continue
    env = uwsgi_to_dict(msg_body)

    headers = '\r\n'.join(['HTTP/1.1 200 OK', 'Content-Type: text/html', 'Transfer-Encoding: chunked']) + '\r\n\r\n'
    socket.send(sid, zmq.SNDMORE)
    socket.send(b'headers', zmq.SNDMORE)
    socket.send(headers.encode())
    for i in range(1, 100):
        socket.send(sid, zmq.SNDMORE)
        socket.send(b'chunk', zmq.SNDMORE)
        socket.send(('i am the number %d<br/>' % i).encode())
    # the extension: echo what uwsgi_to_dict read from the packet
    socket.send(sid, zmq.SNDMORE)
    socket.send(b'chunk', zmq.SNDMORE)
    socket.send(b'PATH_INFO=' + env.get(b'PATH_INFO', b'?') + b' X_PROBE=' + env.get(b'HTTP_X_PROBE', b'?'))

    # to end a chunked response just send an empty chunk
    socket.send(sid, zmq.SNDMORE)
    socket.send(b'chunk', zmq.SNDMORE)
    socket.send(b'')
