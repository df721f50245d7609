"""A codec whose network runs on TensorFlow Serving; entropy coding stays here.

The split follows what each side can run. The codec SavedModel
(:mod:`tfrnncomp.export`) holds core TensorFlow ops only, so a stock
``tensorflow/serving`` serves its ``encode`` and ``decode`` signatures. The
entropy model (``entropy/``, :mod:`tfrnncomp.entropy`) needs
tensorflow-compression's range coding ops, which TF Serving does not have;
it runs in the client, from a local copy of the exported directory (which
also gives the model identifier, ``model.json``, that bitstreams record).

:class:`RemoteCodec` has the interface of :class:`tfrnncomp.cli.SavedCodec`
(it is a subclass): ``encode``, ``decode``, ``bits``, ``name``,
``weights_sha256``, ``system``, ``entropy``. So :func:`tfrnncomp.cli.compress`,
:func:`~tfrnncomp.cli.decompress`, :func:`~tfrnncomp.cli.encode_file` and
:func:`~tfrnncomp.cli.decode_file` take it in place of a local model, and the
files they write are byte for byte those of ``tools/encoder.py`` with the same
model (the server computes the same codes; the chunks, header and container
are made here by the same code).

Two transports, one interface (``metadata()``, ``predict(signature,
inputs)``):

- :class:`RestTransport`, the standard library only (``urllib``): TF
  Serving's REST API, ``GET /v1/models/NAME[/versions/N]/metadata`` and
  ``POST /v1/models/NAME[/versions/N]:predict`` with the *columnar* request
  ``{"signature_name": "encode", "inputs": {"image": [[[r, g, b], ...]],
  "iterations": 4}}`` (the row format, ``"instances"``, splits every input
  along a batch dimension, which the scalar inputs do not have). The answer
  is ``{"outputs": [...]}`` (a signature with one output: TF Serving drops
  its name) or ``{"outputs": {"name": [...], ...}}``; errors are
  ``{"error": "..."}`` with an HTTP error status.
- :class:`GrpcTransport`, with the optional ``tensorflow-serving-api``
  package (``pip install 'tfrnncomp[serving]'``):
  ``PredictionService/Predict`` and ``GetModelMetadata``, tensors as
  ``TensorProto`` (raw bytes: far smaller and faster than JSON for images).

(References: TF Serving's RESTful API,
https://www.tensorflow.org/tfx/serving/api_rest, and its gRPC service,
tensorflow_serving/apis/prediction_service.proto, of TF Serving 2.14.)

The client checks the served signatures (names, dtypes, ranks, bits) against
what a tfrnncomp codec has before sending an image, and every answer's dtype
and shape against the request. It cannot check that the server runs the
weights of the local directory (TF Serving does not expose them): pin the
version (``version=``) that the local directory is a copy of.
"""

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors

__all__ = ["DEFAULT_REST_SERVER", "DEFAULT_GRPC_SERVER", "RestTransport",
           "GrpcTransport", "grpc_available", "RemoteCodec", "connect",
           "rest_request"]

DEFAULT_REST_SERVER = "http://localhost:8501"
"""TF Serving's default REST address (``--rest_api_port=8501``)."""

DEFAULT_GRPC_SERVER = "localhost:8500"
"""TF Serving's default gRPC address (``--port=8500``)."""

_NUMPY = {"DT_UINT8": np.uint8, "DT_INT8": np.int8, "DT_INT32": np.int32,
          "DT_INT64": np.int64, "DT_FLOAT": np.float32, "DT_BOOL": np.bool_}

# What a tfrnncomp codec serves: {signature: ({input: (dtype, shape)},
# {output: (dtype, shape)})}; None is any size, "bits" the codec's bits.
_EXPECTED = {
    "encode": ({"image": ("DT_UINT8", (None, None, 3)),
                "iterations": ("DT_INT32", ())},
               {"codes": ("DT_INT8", (None, None, None, "bits"))}),
    "decode": ({"codes": ("DT_INT8", (None, None, None, "bits")),
                "height": ("DT_INT32", ()), "width": ("DT_INT32", ())},
               {"x_hat": ("DT_UINT8", (None, None, None, 3))}),
}


def _one_line(text, limit=300):
  return " ".join(str(text).split())[:limit]


def _get(mapping, *keys):
  """mapping[key] for the first key present (snake_case or camelCase JSON)."""
  for key in keys:
    if key in mapping:
      return mapping[key]
  return None


def _tensor_info_from_json(info):
  """A TensorInfo as JSON (proto3 mapping) -> (dtype name, shape or None)."""
  dtype = info.get("dtype", "DT_INVALID")
  shape = _get(info, "tensor_shape", "tensorShape") or {}
  if _get(shape, "unknown_rank", "unknownRank"):
    return dtype, None
  return dtype, tuple(int(d.get("size", 0)) for d in shape.get("dim", []))


def _signatures_from_json(signature_defs):
  """{name: SignatureDef as JSON} -> {name: (inputs, outputs) tensor info}."""
  result = {}
  for name, signature in signature_defs.items():
    result[name] = tuple(
        {key: _tensor_info_from_json(value)
         for key, value in (signature.get(part) or {}).items()}
        for part in ("inputs", "outputs"))
  return result


def _signatures_from_proto(signature_def_map):
  """{name: SignatureDef proto} -> {name: (inputs, outputs)} of tensor info."""
  from tensorflow.core.framework import types_pb2  # pylint: disable=g-import-not-at-top
  result = {}
  for name, signature in signature_def_map.items():
    parts = []
    for tensors in (signature.inputs, signature.outputs):
      part = {}
      for key, info in tensors.items():
        shape = (None if info.tensor_shape.unknown_rank else
                 tuple(int(d.size) for d in info.tensor_shape.dim))
        part[key] = (types_pb2.DataType.Name(info.dtype), shape)
      parts.append(part)
    result[name] = tuple(parts)
  return result


def rest_request(signature, inputs):
  """The JSON body of a REST predict request (columnar ``"inputs"``).

  Args:
    signature: the signature name, e.g. "encode".
    inputs: {name: NumPy array or scalar}.
  """
  return {"signature_name": signature,
          "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}


class RestTransport:
  """TF Serving's REST API for one model (and optionally one version).

  Args:
    server: base URL, e.g. ``http://localhost:8501``.
    model_name: the served model's name (``--model_name`` of the server).
    version: serve this version only (None: the server's choice, the highest
      it has loaded).
    timeout: seconds for each request.
  """

  def __init__(self, server, model_name, version=None, timeout=300.):
    if not re.match(r"https?://", server):
      server = "http://" + server
    self.server = server.rstrip("/")
    self.model_name = model_name
    self.version = version
    self.timeout = timeout
    path = "/v1/models/" + urllib.parse.quote(model_name, safe="")
    if version is not None:
      path += f"/versions/{int(version)}"
    self.base_url = self.server + path

  def describe(self):
    version = "" if self.version is None else f" version {self.version}"
    return f"{self.model_name}{version} at {self.server} (REST)"

  def _send(self, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"})
    try:
      with urllib.request.urlopen(request, timeout=self.timeout) as response:
        payload = response.read()
    except urllib.error.HTTPError as e:
      detail = e.read().decode("utf-8", "replace")
      try:
        detail = json.loads(detail).get("error", detail)
      except (ValueError, AttributeError):
        pass
      raise errors.ModelError(f"TF Serving {self.describe()}: HTTP {e.code}: "
                              f"{_one_line(detail)}") from None
    except (urllib.error.URLError, OSError) as e:
      reason = getattr(e, "reason", e)
      raise errors.ModelError(f"cannot reach TF Serving at {self.server}: "
                              f"{_one_line(reason)}") from None
    try:
      return json.loads(payload)
    except ValueError:
      raise errors.ModelError(f"TF Serving {self.describe()}: the answer is "
                              f"not JSON") from None

  def metadata(self):
    """{signature: (inputs, outputs)}, each {name: (dtype name, shape)}."""
    answer = self._send(self.base_url + "/metadata")
    try:
      defs = answer["metadata"]["signature_def"]
      defs = _get(defs, "signature_def", "signatureDef")
      return _signatures_from_json(defs)
    except (KeyError, TypeError, AttributeError, ValueError):
      raise errors.ModelError(f"TF Serving {self.describe()}: unexpected "
                              f"metadata answer") from None

  def predict(self, signature, inputs, outputs):
    """Runs a signature: {name: array} -> {name: array of ``outputs`` dtype}.

    Args:
      signature: the signature's name.
      inputs: {name: NumPy array}.
      outputs: {name: NumPy dtype} of the signature's outputs.
    """
    answer = self._send(self.base_url + ":predict",
                        rest_request(signature, inputs))
    values = answer.get("outputs") if isinstance(answer, dict) else None
    if values is None:
      raise errors.ModelError(f"TF Serving {self.describe()}: {signature} "
                              f"answered without outputs")
    if len(outputs) == 1 and not isinstance(values, dict):
      values = {next(iter(outputs)): values}
    try:
      return {name: np.asarray(values[name], dtype)
              for name, dtype in outputs.items()}
    except (KeyError, TypeError, ValueError, OverflowError) as e:
      raise errors.ModelError(f"TF Serving {self.describe()}: bad {signature} "
                              f"outputs: {_one_line(e)}") from None


def grpc_available():
  """Whether the optional ``tensorflow-serving-api`` package is installed."""
  try:
    # pylint: disable-next=g-import-not-at-top,unused-import
    from tensorflow_serving.apis import prediction_service_pb2_grpc
  except ImportError:
    return False
  return True


class GrpcTransport:
  """TF Serving's gRPC API (``tensorflow-serving-api``) for one model.

  Args:
    server: ``host:port``, e.g. ``localhost:8500``.
    model_name, version, timeout: as :class:`RestTransport`'s.
  """

  MAX_MESSAGE = 1 << 30

  def __init__(self, server, model_name, version=None, timeout=300.):
    if not grpc_available():
      raise errors.ModelError("gRPC needs the tensorflow-serving-api package "
                              "(pip install 'tfrnncomp[serving]'); or use "
                              "REST")
    import grpc  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
    self.server = re.sub(r"^grpc://", "", server)
    self.model_name = model_name
    self.version = version
    self.timeout = timeout
    self._grpc = grpc
    self._channel = grpc.insecure_channel(self.server, options=[
        ("grpc.max_send_message_length", self.MAX_MESSAGE),
        ("grpc.max_receive_message_length", self.MAX_MESSAGE)])
    self._stub = prediction_service_pb2_grpc.PredictionServiceStub(
        self._channel)

  def describe(self):
    version = "" if self.version is None else f" version {self.version}"
    return f"{self.model_name}{version} at {self.server} (gRPC)"

  def close(self):
    self._channel.close()

  def _spec(self, spec, signature=""):
    spec.name = self.model_name
    if self.version is not None:
      spec.version.value = int(self.version)
    if signature:
      spec.signature_name = signature

  def _call(self, method, request):
    try:
      return method(request, timeout=self.timeout)
    except self._grpc.RpcError as e:
      code = e.code().name if e.code() else "UNKNOWN"
      if code == "UNAVAILABLE":
        raise errors.ModelError(f"cannot reach TF Serving at {self.server}: "
                                f"{_one_line(e.details())}") from None
      raise errors.ModelError(f"TF Serving {self.describe()}: {code}: "
                              f"{_one_line(e.details())}") from None

  def metadata(self):
    """{signature: (inputs, outputs)}, each {name: (dtype name, shape)}."""
    from tensorflow_serving.apis import get_model_metadata_pb2  # pylint: disable=g-import-not-at-top
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    self._spec(request.model_spec)
    request.metadata_field.append("signature_def")
    response = self._call(self._stub.GetModelMetadata, request)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    if not response.metadata["signature_def"].Unpack(signature_defs):
      raise errors.ModelError(f"TF Serving {self.describe()}: unexpected "
                              f"metadata answer")
    return _signatures_from_proto(signature_defs.signature_def)

  def predict(self, signature, inputs, outputs):
    """As :meth:`RestTransport.predict`, with tensors as TensorProto."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    request = predict_pb2.PredictRequest()
    self._spec(request.model_spec, signature)
    for name, value in inputs.items():
      request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    for name in outputs:
      request.output_filter.append(name)
    response = self._call(self._stub.Predict, request)
    try:
      result = {name: tf.make_ndarray(response.outputs[name])
                for name in outputs}
    except (KeyError, TypeError, ValueError) as e:
      raise errors.ModelError(f"TF Serving {self.describe()}: bad {signature} "
                              f"outputs: {_one_line(e)}") from None
    for name, dtype in outputs.items():
      if result[name].dtype != dtype:
        raise errors.ModelError(
            f"TF Serving {self.describe()}: {signature} output {name} is "
            f"{result[name].dtype}, expected {np.dtype(dtype).name}")
    return result


def _check_signatures(signatures, where):
  """Checks a served model is a tfrnncomp codec; returns its bits."""
  bits = set()
  for signature, parts in _EXPECTED.items():
    if signature not in signatures:
      raise errors.ModelError(f"{where} is not a tfrnncomp codec (no "
                              f"{signature} signature)")
    for part, expected, served in zip(("input", "output"), parts,
                                      signatures[signature]):
      if set(served) != set(expected):
        raise errors.ModelError(
            f"{where} is not a tfrnncomp codec: {signature} has {part}s "
            f"{sorted(served)}, expected {sorted(expected)}")
      for name, (dtype, shape) in expected.items():
        got_dtype, got_shape = served[name]
        if got_dtype != dtype or got_shape is None or len(got_shape) != len(
            shape) or any(
                want not in (None, "bits") and got != want
                for got, want in zip(got_shape, shape)):
          raise errors.ModelError(
              f"{where} is not a tfrnncomp codec: {signature} {part} {name} "
              f"is {got_dtype} {got_shape}, expected {dtype} of rank "
              f"{len(shape)}")
        if "bits" in shape:
          bits.add(got_shape[shape.index("bits")])
  if len(bits) != 1 or min(bits) < 1:
    raise errors.ModelError(f"{where}: the codes of encode and decode disagree "
                            f"or have no fixed number of bits ({sorted(bits)})")
  return bits.pop()


class RemoteCodec(cli.SavedCodec):
  """A :class:`~tfrnncomp.cli.SavedCodec` whose network runs on TF Serving.

  Args:
    transport: a :class:`RestTransport` or :class:`GrpcTransport` (or any
      object with their ``metadata``, ``predict`` and ``describe``).
    directory: a local copy of the served version's directory (at least its
      ``model.json``; its ``entropy/`` model, if any, range-codes the
      chunks; its ``config.json`` is checked against the served signatures).

  Raises:
    ModelError: if the server cannot be reached, does not serve a tfrnncomp
      codec, or serves one that codes another number of bits than the local
      directory's; or if the local directory has no ``model.json``.
  """

  # pylint: disable-next=super-init-not-called
  def __init__(self, transport, directory):
    self._transport = transport
    self._loaded = None
    self.directory = directory
    self.where = f"TF Serving model {transport.describe()}"
    signatures = transport.metadata()
    self.bits = _check_signatures(signatures, self.where)
    # Optional: exports before the code search (tfrnncomp.code_search) lack it.
    self._serves_search = "encode_search" in signatures
    read_json = cli._read_json  # pylint: disable=protected-access
    identity = read_json(os.path.join(directory, "model.json"))
    config = read_json(os.path.join(directory, "config.json"))
    if not identity.get("name") or not identity.get("weights_sha256"):
      raise errors.ModelError(f"{directory} has no model.json with the "
                              f"model's name and weights_sha256: give the "
                              f"exported directory the server serves")
    self.name = str(identity["name"])
    self.weights_sha256 = str(identity["weights_sha256"])
    self.system = str(identity.get("system") or config.get("system") or
                      cli.DEFAULT_SYSTEM)
    if "bits" in config and int(config["bits"]) != self.bits:
      raise errors.ModelError(
          f"{self.where} codes {self.bits} bits per block, the local model "
          f"{directory} {config['bits']}: not the same model")
    self._entropy = None
    self._entropy_loaded = False

  @property
  def transport(self):
    return self._transport

  def encode(self, image, iterations, search_steps=0):
    """uint8 [H, W, 3] -> int8 +-1 codes [iterations, H/16, W/16, bits].

    ``search_steps`` > 0 calls the served ``encode_search`` signature (the
    code search, :mod:`tfrnncomp.code_search`).
    """
    image = np.asarray(image, np.uint8)
    search_steps = cli.check_search_steps(search_steps)
    inputs = {"image": image, "iterations": np.int32(iterations)}
    signature = "encode"
    if search_steps:
      if not self._serves_search:
        raise errors.ModelError(f"{self.where} serves no encode_search "
                                f"signature (exported before the code "
                                f"search): re-export the model")
      signature = "encode_search"
      inputs["search_steps"] = np.int32(search_steps)
    codes = self._transport.predict(signature, inputs,
                                    {"codes": np.int8})["codes"]
    blocks = lambda n: -(-n // codes_io.BLOCK)
    expected = (int(iterations), blocks(image.shape[0]),
                blocks(image.shape[1]), self.bits)
    if codes.shape != expected or not np.isin(codes, (-1, 1)).all():
      raise errors.ModelError(f"{self.where}: encode answered codes of shape "
                              f"{codes.shape}, expected +-1 of {expected}")
    return codes

  def decode(self, codes, height, width):
    """int8 codes [T, h, w, bits] -> uint8 [T, height, width, 3]."""
    codes = np.asarray(codes, np.int8)
    x_hat = self._transport.predict(
        "decode", {"codes": codes, "height": np.int32(height),
                   "width": np.int32(width)}, {"x_hat": np.uint8})["x_hat"]
    expected = (codes.shape[0], int(height), int(width), 3)
    if x_hat.shape != expected:
      raise errors.ModelError(f"{self.where}: decode answered images of shape "
                              f"{x_hat.shape}, expected {expected}")
    return x_hat


def connect(server, model_name, directory, version=None, protocol="rest",
            timeout=300.):
  """A :class:`RemoteCodec` of a served codec.

  Args:
    server: REST base URL (``http://host:8501``) or gRPC ``host:port``; None
      for the default of the protocol.
    model_name: the served model's name.
    directory: the local copy of the served version (see
      :class:`RemoteCodec`).
    version: the served version to use (None: the server's latest).
    protocol: "rest" or "grpc".
    timeout: seconds for each request.
  """
  if protocol == "rest":
    transport = RestTransport(server or DEFAULT_REST_SERVER, model_name,
                              version, timeout)
  elif protocol == "grpc":
    transport = GrpcTransport(server or DEFAULT_GRPC_SERVER, model_name,
                              version, timeout)
  else:
    raise errors.InputError(f"unknown protocol {protocol!r} (rest or grpc)")
  return RemoteCodec(transport, directory)
