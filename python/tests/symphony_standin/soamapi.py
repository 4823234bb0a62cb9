"""A stand-in for IBM Spectrum Symphony's Python API (``soamapi``), for the Symphony adapter's tests.

It has the surface scaler.worker_adapter.symphony.worker uses, and a "service" that does what
upstream's example Symphony service does: ``fn, *args = cloudpickle.loads(input)`` and
``output = cloudpickle.dumps(fn(*args))``. The service runs each task on a thread of this process
and answers through the session callback, as Symphony would from its compute hosts. Messages go
through on_serialize / on_deserialize, as with Symphony.

With SOAMAPI_STANDIN_LOG set, each task appends one line to that file when it starts running
("start <n>") and when it ends ("end <n>"), so tests can tell that tasks went through here. With
SOAMAPI_STANDIN_FAIL_CONNECT set, connect() raises.
"""

import itertools
import os
import threading

import cloudpickle

_initialized = False
_ids = itertools.count(1)
_log_lock = threading.Lock()


def _log(line):
    path = os.environ.get("SOAMAPI_STANDIN_LOG")
    if path:
        with _log_lock, open(path, "a") as f:
            f.write(line + "\n")


def initialize():
    global _initialized
    _initialized = True


def uninitialize():
    global _initialized
    _initialized = False


class SessionFlags:
    PARTIAL_ASYNC = 1


class DefaultSecurityCallback:
    def __init__(self, user, password):
        self.user, self.password = user, password


class SessionCallback:
    def on_response(self, task_output_handle):
        pass

    def on_exception(self, exception):
        pass


class _Stream:
    def __init__(self, data=b""):
        self.data = bytearray(data)

    def write_bytearray(self, value):
        self.data += bytes(value)

    def read_bytearray(self):
        data, self.data = bytes(self.data), bytearray()
        return bytearray(data)


class Message:
    def __init__(self):
        pass

    def on_serialize(self, stream):
        raise NotImplementedError

    def on_deserialize(self, stream):
        raise NotImplementedError


class SessionCreationAttributes:
    def set_session_type(self, value):
        self.session_type = value

    def set_session_name(self, value):
        self.session_name = value

    def set_session_flags(self, value):
        self.session_flags = value

    def set_session_callback(self, value):
        self.session_callback = value


class TaskSubmissionAttributes:
    def set_task_input(self, message):
        self.task_input = message


class SoamException(Exception):
    def __init__(self, embedded):
        super().__init__(str(embedded))
        self._embedded = embedded

    def get_embedded_exception(self):
        return self._embedded


class _TaskInputHandle:
    def __init__(self, task_id):
        self._id = task_id

    def get_id(self):
        return self._id


class _TaskOutputHandle:
    def __init__(self, task_id, output=None, error=None):
        self._id, self._output, self._error = task_id, output, error

    def get_id(self):
        return self._id

    def is_successful(self):
        return self._error is None

    def populate_task_output(self, message):
        message.on_deserialize(_Stream(self._output))

    def get_exception(self):
        return SoamException(self._error)


class _Session:
    def __init__(self, service, attributes):
        assert attributes.session_flags == SessionFlags.PARTIAL_ASYNC
        self._service = service
        self._callback = attributes.session_callback

    def send_task_input(self, attributes):
        stream = _Stream()
        attributes.task_input.on_serialize(stream)
        task_id = str(next(_ids))
        threading.Thread(target=self._serve, args=(task_id, bytes(stream.data)), daemon=True).start()
        return _TaskInputHandle(task_id)

    def _serve(self, task_id, payload):
        _log(f"start {task_id}")
        try:
            fn, *args = cloudpickle.loads(payload)
            output = cloudpickle.dumps(fn(*args))
        except Exception as exc:  # the service's exception, embedded in Symphony's
            _log(f"end {task_id}")
            self._callback.on_response(_TaskOutputHandle(task_id, error=exc))
            return
        _log(f"end {task_id}")
        self._callback.on_response(_TaskOutputHandle(task_id, output=output))

    def close(self):
        pass


class _Connection:
    def __init__(self, service):
        self.service = service

    def create_session(self, attributes):
        return _Session(self.service, attributes)

    def close(self):
        pass


def connect(service_name, security_callback):
    if not _initialized:
        raise RuntimeError("soamapi.initialize() was not called")
    if os.environ.get("SOAMAPI_STANDIN_FAIL_CONNECT"):
        raise RuntimeError(f"no such service: {service_name}")
    return _Connection(service_name)
