"""The host target: LLVM initialization, the target machine, the optimization
pipeline, object code emission and loading.

Everything graphk compiles goes through three steps here:

    module = new_module("fn")            # llvmlite.ir.Module with host triple/layout
    obj = compile_ir(str(module))        # optimize (O3 + vectorizers) -> object code
    loaded = load_object(obj)            # one MCJIT engine; loaded.address("kernel")

Object code is the unit the disk cache stores, so a cold compile and a cache
hit load native code the same way.  Code is compiled for the host CPU (name
and features as LLVM detects them), so a cache key must include `host_key()`.
"""

from __future__ import annotations

import re
import threading

import llvmlite
import llvmlite.binding as llvm
import llvmlite.ir as ir

__all__ = [
    "initialize", "target_machine", "host_cpu", "host_key", "vector_bits",
    "new_module", "compile_ir", "load_object", "LoadedObject",
]

_lock = threading.RLock()
_state: dict = {}


# Loop tails as masked vector iterations where the target allows it (AVX-512 masks),
# else a scalar epilogue, and no second vectorized epilogue: rows of odd length run
# vectorized to the end, and each loop is emitted once or twice instead of three times
# (a softmax module: about 50 ms of LLVM time instead of 150).
_LLVM_OPTIONS = ("-prefer-predicate-over-epilogue=predicate-else-scalar-epilogue",
                 "-enable-epilogue-vectorization=false")


def initialize() -> None:
    """Initialize the native target and asm printer once per process.

    llvmlite >= 0.50 raises on `llvm.initialize()` (LLVM does that itself now);
    only the native target and its asm printer still need initializing."""
    with _lock:
        if _state.get("initialized"):
            return
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        for option in _LLVM_OPTIONS:
            llvm.set_option("graphk", option)
        _state["initialized"] = True


def host_cpu() -> tuple[str, str]:
    """(cpu name, feature string) as LLVM detects them on this machine."""
    with _lock:
        if "cpu" not in _state:
            initialize()
            _state["cpu"] = (llvm.get_host_cpu_name(),
                             llvm.get_host_cpu_features().flatten())
        return _state["cpu"]


def vector_bits() -> int:
    """The SIMD width the kernels are compiled for: 512 with AVX-512, else 256
    with AVX/AVX2, else 128.

    LLVM's Intel tuning prefers 256-bit vectors even where AVX-512 exists (to
    avoid frequency drops on older parts); graphk's kernels are long streaming
    loops where 512-bit wins, so the preference is raised on AVX-512 hosts."""
    bits = _state.get("vector_bits")
    if bits is None:  # fixed for the process; asked for every kernel key and definition
        features = host_cpu()[1].split(",")
        bits = 512 if "+avx512f" in features else 256 if "+avx" in features else 128
        _state["vector_bits"] = bits
    return bits


def host_key() -> str:
    """Everything compiled native code depends on besides its own IR text:
    the CPU name and features, the LLVM and llvmlite versions and graphk's."""
    key = _state.get("host_key")
    if key is None:  # fixed for the process; part of every kernel key
        from graphk import __version__ as graphk_version
        name, features = host_cpu()
        llvm_version = ".".join(map(str, llvm.llvm_version_info))
        key = _state["host_key"] = (f"cpu={name};features={features};llvm={llvm_version};"
                                    f"llvmlite={llvmlite.__version__};graphk={graphk_version};"
                                    f"vector_bits={vector_bits()}")
    return key


def _new_target_machine() -> llvm.TargetMachine:
    initialize()
    name, features = host_cpu()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=name, features=features, opt=3,
                                        reloc="default", codemodel="jitdefault", jit=True)


def target_machine() -> llvm.TargetMachine:
    """The host target machine (O3, JIT code model), created once for compiling."""
    with _lock:
        if "tm" not in _state:
            _state["tm"] = _new_target_machine()
        return _state["tm"]


def new_module(name: str) -> ir.Module:
    """An empty llvmlite module for the host triple and data layout."""
    tm = target_machine()
    module = ir.Module(name=name)
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    return module


# llvmlite.ir only prints the enumerated LLVM attributes; string attributes
# such as the preferred vector width are added to each definition line.
_DEFINE_LINE = re.compile(r"^(define [^\n]*?)(\s*\{?)$", re.MULTILINE)


def _with_vector_width(text: str) -> str:
    attribute = f' "prefer-vector-width"="{vector_bits()}"'
    return _DEFINE_LINE.sub(lambda m: m.group(1) + attribute + m.group(2), text)


def _optimize(module_ref: llvm.ModuleRef) -> None:
    """The new pass manager's O3 pipeline with loop and SLP vectorization."""
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    options.loop_vectorization = True
    options.slp_vectorization = True
    options.loop_unrolling = True
    builder = llvm.create_pass_builder(target_machine(), options)
    builder.getModulePassManager().run(module_ref, builder)


def _parsed(text: str) -> llvm.ModuleRef:
    tm = target_machine()
    module_ref = llvm.parse_assembly(_with_vector_width(text))
    module_ref.triple = tm.triple
    module_ref.data_layout = str(tm.target_data)
    module_ref.verify()
    return module_ref


def optimized_module(texts) -> llvm.ModuleRef:
    """Parse, verify, link and optimize LLVM IR text (one text or a list of module texts:
    internal symbols of the same name are renamed apart by the linker)."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    with _lock:  # LLVM's global context is not safe to use from two threads
        module_ref = _parsed(texts[0])
        for text in texts[1:]:
            module_ref.link_in(_parsed(text))
        _optimize(module_ref)
        return module_ref


def compile_ir(texts) -> bytes:
    """Object code for LLVM IR text (or a list of module texts, linked into one):
    parsed, verified, optimized at O3 with loop/SLP vectorization for the host CPU,
    emitted as one object file."""
    module_ref = optimized_module(texts)
    with _lock:
        return target_machine().emit_object(module_ref)


def assembly(text) -> str:
    """The host assembly of LLVM IR text after optimization (for inspection,
    e.g. to see which vector registers a kernel uses)."""
    module_ref = optimized_module(text)
    with _lock:
        return target_machine().emit_assembly(module_ref)


class LoadedObject:
    """Object code loaded into its own MCJIT engine.

    The engine owns the code's memory, so function addresses stay valid as
    long as this object is alive: keep a reference beside every pointer."""

    def __init__(self, obj: bytes):
        with _lock:
            # an engine owns (and frees) the target machine it is given: never the shared one
            tm = _new_target_machine()
            self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self._engine.finalize_object()

    def address(self, name: str) -> int:
        """The address of a function the object defines; KeyError if absent."""
        with _lock:
            address = self._engine.get_function_address(name)
        if not address:
            raise KeyError(f"compiled object defines no function {name!r}")
        return address


def load_object(obj: bytes) -> LoadedObject:
    """Load object code produced by `compile_ir` (now or by an earlier process)."""
    return LoadedObject(obj)
