"""tfrnncomp/serving.py and tools/serving_client.py against fake TF Servings.

TF Serving itself cannot run here, so two small in-process fakes stand in for
it: a REST one (http.server in a thread) and a gRPC one (grpcio with
tensorflow-serving-api's service definitions). Both answer, as TF Serving
does, by running the exported SavedModel's signatures, and both check every
request against those signatures (names, dtypes, shapes) and record it. The
served directory is a copy of the tiny codec with an entropy model, so that
the client range-codes chunks locally; the files written through a server
must equal tools/encoder.py's byte for byte.
"""

import http.server
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import export
from tfrnncomp import serving
from tfrnncomp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(ROOT, "tools", "serving_client.py")
ENCODER = os.path.join(ROOT, "tools", "encoder.py")
NAME = "tiny"


_image = testing.gradient_image


@pytest.fixture(scope="module")
def version_dir(tiny_entropy_dir, tmp_path_factory):
  """Version 1 of NAME under a serving base: the tiny codec + entropy model."""
  base = str(tmp_path_factory.mktemp("serving"))
  return export.copy_for_serving(tiny_entropy_dir, base, NAME, version=1)


@pytest.fixture(scope="module")
def local(version_dir):
  return cli.load_codec(version_dir)


# --- The fakes. ---------------------------------------------------------------


class _Model:
  """What both fakes share: the served SavedModel, request checks, a log."""

  def __init__(self, version_dir):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
    self.tf = tf
    self.version = int(os.path.basename(version_dir))
    self.loaded = tf.saved_model.load(version_dir)
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
      proto.ParseFromString(f.read())
    self.signature_defs = proto.meta_graphs[0].signature_def
    self.requests = []  # (signature, {input: (dtype name, shape)}).

  def find(self, name, version):
    if name != NAME or version not in (None, self.version):
      raise LookupError(f"Servable not found for request: Specific({name}, "
                        f"{version})")

  def run(self, signature, tensors):
    """Checks {input: NumPy array} against the signature and runs it."""
    tf = self.tf
    if signature not in self.signature_defs:
      raise ValueError(f"Serving signature name: \"{signature}\" not found in "
                       f"signature def")
    inputs = self.signature_defs[signature].inputs
    if set(tensors) != set(inputs):
      raise ValueError(f"inputs {sorted(tensors)} are not the signature's "
                       f"{sorted(inputs)}")
    feed = {}
    for name, value in tensors.items():
      info = inputs[name]
      dtype = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
      if value.dtype != dtype:
        raise ValueError(f"input {name} is {value.dtype}, the signature "
                         f"wants {np.dtype(dtype).name}")
      dims = [d.size for d in info.tensor_shape.dim]
      if len(dims) != value.ndim or any(
          d not in (-1, s) for d, s in zip(dims, value.shape)):
        raise ValueError(f"input {name} has shape {value.shape}, the "
                         f"signature {dims}")
      feed[name] = tf.constant(value)
    self.requests.append((signature, {k: (v.dtype.name, v.shape)
                                      for k, v in tensors.items()}))
    outputs = self.loaded.signatures[signature](**feed)
    return {k: v.numpy() for k, v in outputs.items()}


def _from_json(value, info):
  """A JSON input -> array of the signature's dtype; checks it holds ints."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dtype = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
  array = np.asarray(value)
  if array.dtype.kind not in "iu":
    raise ValueError(f"expected integers for {np.dtype(dtype).name}, got "
                     f"{array.dtype}")
  limits = np.iinfo(dtype)
  if array.size and (array.min() < limits.min or array.max() > limits.max):
    raise ValueError(f"value out of range for {np.dtype(dtype).name}")
  return array.astype(dtype)


class FakeRestServing:
  """TF Serving's REST API (metadata and columnar predict), in a thread."""

  PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|"
                    r":predict)$")

  def __init__(self, version_dir):
    from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
    self.model = _Model(version_dir)
    self.bodies = []
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def log_message(self, *args):
        pass

      def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def _route(self, method):
        match = fake.PATH.match(self.path)
        if not match or method != {"/metadata": "GET", ":predict": "POST"}[
            match.group(3)]:
          return self._answer(404, {"error": "Malformed request"})
        version = int(match.group(2)) if match.group(2) else None
        try:
          fake.model.find(match.group(1), version)
        except LookupError as e:
          return self._answer(404, {"error": str(e)})
        if match.group(3) == "/metadata":
          defs = {k: json_format.MessageToDict(
              v, preserving_proto_field_name=True)
                  for k, v in fake.model.signature_defs.items()}
          return self._answer(200, {
              "model_spec": {"name": NAME, "signature_name": "",
                             "version": str(fake.model.version)},
              "metadata": {"signature_def": {"signature_def": defs}}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fake.bodies.append(body)
        try:
          if "inputs" not in body:
            raise ValueError("only the columnar format (\"inputs\") is "
                             "faked: the row format cannot carry scalars")
          signature = body.get("signature_name", "serving_default")
          defs = fake.model.signature_defs
          inputs = defs[signature].inputs if signature in defs else {}
          tensors = {k: _from_json(v, inputs[k]) if k in inputs else
                     np.asarray(v) for k, v in body["inputs"].items()}
          outputs = fake.model.run(signature, tensors)
        except ValueError as e:
          return self._answer(400, {"error": str(e)})
        if len(outputs) == 1:  # TF Serving drops the name of a lone output.
          return self._answer(200, {"outputs": next(iter(
              outputs.values())).tolist()})
        return self._answer(200, {"outputs": {k: v.tolist() for k, v in
                                              outputs.items()}})

      def do_GET(self):  # pylint: disable=invalid-name
        self._route("GET")

      def do_POST(self):  # pylint: disable=invalid-name
        self._route("POST")

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
    self.thread = threading.Thread(target=self.httpd.serve_forever,
                                   daemon=True)
    self.thread.start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


class FakeGrpcServing:
  """TF Serving's gRPC PredictionService (Predict, GetModelMetadata)."""

  def __init__(self, version_dir):
    import concurrent.futures  # pylint: disable=g-import-not-at-top
    import grpc  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import get_model_metadata_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
    model = self.model = _Model(version_dir)
    tf = model.tf

    def find(spec, context):
      version = spec.version.value if spec.HasField("version") else None
      try:
        model.find(spec.name, version)
      except LookupError as e:
        context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):

      def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
        find(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = NAME
        response.model_spec.version.value = model.version
        defs = get_model_metadata_pb2.SignatureDefMap()
        for key, value in model.signature_defs.items():
          defs.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(defs)
        return response

      def Predict(self, request, context):  # pylint: disable=invalid-name
        find(request.model_spec, context)
        tensors = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        try:
          outputs = model.run(request.model_spec.signature_name or
                              "serving_default", tensors)
        except ValueError as e:
          context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response = predict_pb2.PredictResponse()
        for key, value in outputs.items():
          if not request.output_filter or key in request.output_filter:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        Servicer(), self.server)
    self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
    self.server.start()

  def close(self):
    self.server.stop(None)


@pytest.fixture(scope="module")
def rest(version_dir):
  fake = FakeRestServing(version_dir)
  yield fake
  fake.close()


def _write_image(path, height, width, seed=0):
  Image.fromarray(_image(height, width, seed)).save(str(path))
  return str(path)


# --- Tests. -------------------------------------------------------------------


def test_rest_files_equal_the_local_ones_and_requests_fit(tmp_path, rest,
                                                          version_dir, local):
  image_path = _write_image(tmp_path / "x.png", 40, 70)
  codec = serving.connect(rest.url, NAME, version_dir, version=1)
  assert (codec.bits, codec.name, codec.weights_sha256, codec.system) == (
      local.bits, local.name, local.weights_sha256, local.system)
  rest.model.requests.clear()
  rest.bodies.clear()
  # Every iteration range-coded: the entropy model runs here, on the client.
  remote = cli.encode_file(codec, image_path, str(tmp_path / "r.rnc"), 4,
                           entropy_coding="always")
  cli.encode_file(local, image_path, str(tmp_path / "l.rnc"), 4,
                  entropy_coding="always")
  assert remote.range_coded == 4
  assert (tmp_path / "r.rnc").read_bytes() == (tmp_path / "l.rnc").read_bytes()
  # The payload: the columnar format, the signature's names, dtypes, shapes.
  assert rest.bodies[0]["signature_name"] == "encode"
  assert set(rest.bodies[0]["inputs"]) == {"image", "iterations"}
  assert rest.bodies[0]["inputs"]["iterations"] == 4
  assert rest.model.requests == [
      ("encode", {"image": ("uint8", (40, 70, 3)),
                  "iterations": ("int32", ())})]
  # By bpp: the same bytes too; as an .npz, the same codes (a zip's bytes
  # hold the time).
  cli.encode_file(codec, image_path, str(tmp_path / "rb.rnc"), bpp=0.8)
  cli.encode_file(local, image_path, str(tmp_path / "lb.rnc"), bpp=0.8)
  assert (tmp_path / "rb.rnc").read_bytes() == (
      tmp_path / "lb.rnc").read_bytes()
  cli.encode_file(codec, image_path, str(tmp_path / "r.npz"), 2)
  cli.encode_file(local, image_path, str(tmp_path / "l.npz"), 2)
  for remote_part, local_part in zip(
      codes_io.load_codes(str(tmp_path / "r.npz")),
      codes_io.load_codes(str(tmp_path / "l.npz"))):
    np.testing.assert_array_equal(remote_part, local_part)
  # Decompressing through the server: the decoder's images.
  rest.model.requests.clear()
  with open(tmp_path / "r.rnc", "rb") as f:
    remote_images = cli.decompress(codec, f.read())
  assert rest.model.requests == [
      ("decode", {"codes": ("int8", (4, 3, 5, 8)), "height": ("int32", ()),
                  "width": ("int32", ())})]
  local_images = cli.decode_file(local, str(tmp_path / "l.rnc"),
                                 str(tmp_path / "out"))
  np.testing.assert_array_equal(remote_images.x_hat, local_images.x_hat)
  # The code search runs on the server too (its encode_search signature).
  rest.model.requests.clear()
  cli.encode_file(codec, image_path, str(tmp_path / "rs.rnc"), 2,
                  search_steps=2)
  cli.encode_file(local, image_path, str(tmp_path / "ls.rnc"), 2,
                  search_steps=2)
  assert rest.model.requests == [
      ("encode_search", {"image": ("uint8", (40, 70, 3)),
                         "iterations": ("int32", ()),
                         "search_steps": ("int32", ())})]
  assert (tmp_path / "rs.rnc").read_bytes() == (
      tmp_path / "ls.rnc").read_bytes()


def test_grpc_files_equal_the_local_ones(tmp_path, version_dir, local):
  if not serving.grpc_available():
    pytest.skip("tensorflow-serving-api is not installed")
  fake = FakeGrpcServing(version_dir)
  try:
    image_path = _write_image(tmp_path / "x.png", 33, 47, seed=3)
    codec = serving.connect(fake.address, NAME, version_dir, version=1,
                            protocol="grpc")
    assert codec.bits == local.bits
    cli.encode_file(codec, image_path, str(tmp_path / "r.rnc"), 3)
    cli.encode_file(local, image_path, str(tmp_path / "l.rnc"), 3)
    assert (tmp_path / "r.rnc").read_bytes() == (
        tmp_path / "l.rnc").read_bytes()
    assert fake.model.requests[-1] == (
        "encode", {"image": ("uint8", (33, 47, 3)),
                   "iterations": ("int32", ())})
    remote = cli.decode_file(codec, str(tmp_path / "r.rnc"),
                             str(tmp_path / "ro"))
    mine = cli.decode_file(local, str(tmp_path / "l.rnc"), str(tmp_path / "lo"))
    np.testing.assert_array_equal(remote.x_hat, mine.x_hat)
    with pytest.raises(errors.ModelError, match="NOT_FOUND: Servable not "
                       "found"):
      serving.connect(fake.address, NAME, version_dir, version=9,
                      protocol="grpc")
  finally:
    fake.close()


def test_command_line_client_writes_the_encoders_file(tmp_path, rest,
                                                      version_dir):
  image_path = _write_image(tmp_path / "x.png", 50, 41, seed=1)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  client = subprocess.run(
      [sys.executable, CLIENT, "compress", f"--server={rest.url}",
       f"--model_name={NAME}", "--model_version=1", f"--model={version_dir}",
       f"--input_image={image_path}", f"--output_codes={tmp_path / 'r.rnc'}",
       "--iteration=3"], env=env, capture_output=True, text=True)
  assert client.returncode == 0, client.stderr[-2000:]
  assert "4 iterations" in client.stdout
  encoder = subprocess.run(
      [sys.executable, ENCODER, f"--model={version_dir}",
       f"--input_image={image_path}", f"--output_codes={tmp_path / 'l.rnc'}",
       "--iteration=3"], env=env, capture_output=True, text=True)
  assert encoder.returncode == 0, encoder.stderr[-2000:]
  assert (tmp_path / "r.rnc").read_bytes() == (tmp_path / "l.rnc").read_bytes()
  # A user error: one line, non-zero, before any network traffic.
  usage = subprocess.run([sys.executable, CLIENT, "compress",
                          f"--model_name={NAME}"], env=env,
                         capture_output=True, text=True)
  assert usage.returncode == 2
  assert usage.stderr.strip().splitlines() == [
      "serving_client.py: error: --input_image is required"]


def test_errors_are_one_line_model_errors(tmp_path, rest, version_dir,
                                          tiny32_model_dir):
  with pytest.raises(errors.ModelError, match="cannot reach TF Serving at "
                     "http://127.0.0.1:1"):
    serving.connect("http://127.0.0.1:1", NAME, version_dir, timeout=5)
  with pytest.raises(errors.ModelError, match="HTTP 404: Servable not found"):
    serving.connect(rest.url, "other", version_dir)
  with pytest.raises(errors.ModelError, match="HTTP 404"):
    serving.connect(rest.url, NAME, version_dir, version=2)
  with pytest.raises(errors.ModelError, match="no model.json"):
    serving.connect(rest.url, NAME, str(tmp_path))
  # A local directory of another model (32 bits) than the served one (8).
  with pytest.raises(errors.ModelError, match="codes 8 bits per block, the "
                     "local model .* 32: not the same model"):
    serving.connect(rest.url, NAME, tiny32_model_dir)
  # A request the server refuses comes back as its one-line error.
  codec = serving.connect(rest.url, NAME, version_dir)
  with pytest.raises(errors.ModelError, match="HTTP 400: input codes has "
                     "shape"):
    codec.decode(np.ones([1, 2, 2, 4], np.int8), 32, 32)
