# The original BlastBeat README's "simple python backend" with its
# "ping/pong" consumer and its uwsgi_to_dict, ported from Python 2 to
# Python 3 syntax only (print function, bytes for identities, message
# types and bodies), and extended minimally to answer each request the
# way the README's Ruby EventMachine example does: a head without a
# length, several `body` messages, then `end` (which closes the
# connection). The README's ping snippet calls zmq.send(...), which never
# existed; it is socket.send(...) here.
#
# usage: readme_end_node.py ENDPOINT IDENTITY
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
    # parse the packet into a WSGI environ
    env = uwsgi_to_dict(msg_body)
    # generate HTTP headers
    headers = []
    headers.append(env[b'SERVER_PROTOCOL'] + b' 200 OK')
    headers.append(b'Content-Type: text/html')
    headers.append(b'Server: tremolo.py')

    # send headers
    socket.send_multipart([sid, b'headers', b'\r\n'.join(headers) + b'\r\n\r\n'])
    # send body
    socket.send_multipart([sid, b'body', b'<h1>Hello World</h1>'])
    # send body (again and again and again)
    socket.send_multipart([sid, b'body', b'<h2>Done !!!</h2>'])
    socket.send_multipart([sid, b'body', b'<h3>Done !!!</h3>'])
    socket.send_multipart([sid, b'body', b'<h4>Done !!!</h4>'])
    # the extension: echo what uwsgi_to_dict read from the packet
    socket.send_multipart([sid, b'body', b'PATH_INFO=' + env.get(b'PATH_INFO', b'?') + b' X_PROBE=' + env.get(b'HTTP_X_PROBE', b'?')])
    # close the session
    socket.send_multipart([sid, b'end', b''])
