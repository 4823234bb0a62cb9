"""Test helper for the Go worker tests: plays the object-storage half of a client.

Run as ``python taskhelper.py STORAGE_ADDRESS CLIENT_ID_HEX``. Reads one JSON
command per line on stdin and answers one JSON line on stdout:

- {"op": "serializer"}                       store the client's serializer -> {"id": hex}
- {"op": "func", "src": "...", "name": "f"}  exec src, store function f    -> {"id": hex}
- {"op": "arg", "expr": "..."}               eval expr, store the value     -> {"id": hex}
- {"op": "get", "id": hex}                   fetch and deserialize a result -> {"value": repr} or
                                             {"error": "ExcType", "message": str}
- {"op": "quit"}
"""

import json
import sys

import cloudpickle

from scaler.io import ObjectStorageClient, new_object_id, serializer_object_id


class TestSerializer:
    @staticmethod
    def serialize(obj):
        return cloudpickle.dumps(obj)

    @staticmethod
    def deserialize(payload):
        return cloudpickle.loads(payload)


def main():
    address, client_hex = sys.argv[1], sys.argv[2]
    client = bytes.fromhex(client_hex)
    storage = ObjectStorageClient(address, timeout_s=30)
    out = sys.stdout
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        if op == "serializer":
            oid = serializer_object_id(client)
            storage.set_object(oid, cloudpickle.dumps(TestSerializer()))
            reply = {"id": oid.hex()}
        elif op == "func":
            namespace = {"__name__": "__scaler_test__"}
            exec(cmd["src"], namespace)
            oid = new_object_id(client)
            storage.set_object(oid, TestSerializer.serialize(namespace[cmd["name"]]))
            reply = {"id": oid.hex()}
        elif op == "arg":
            oid = new_object_id(client)
            storage.set_object(oid, TestSerializer.serialize(eval(cmd["expr"])))
            reply = {"id": oid.hex()}
        elif op == "get":
            value = cloudpickle.loads(storage.get_object(bytes.fromhex(cmd["id"])))
            if isinstance(value, BaseException):
                reply = {"error": type(value).__name__, "message": str(value)}
            else:
                reply = {"value": repr(value)}
        else:
            reply = {"error": "BadCommand", "message": op}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
