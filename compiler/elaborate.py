"""AST -> typed dataflow graph: imports loaded, defs inlined, names resolved, ranges inferred.

Values during elaboration are either graph nodes or compile-time things (functions, modules,
string symbols, `prefix_mean` results, tie modes, table literals) that must disappear before
the graph is built; using one where a sequence value is needed is a type error at the use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from rasp2d.compiler import semantics
from rasp2d.compiler.graph import (BOOL, ELEMENTWISE, Abs, Affine, Attend, Case, Const, Equals,
                                   FloorDiv, Graph, Indices, Lookup, Max, Min, Mod, Mul, Op,
                                   PrefixSum, Select, SelectMax, Step, Table, Tokens, VType,
                                   operands)
from rasp2d.lang import ast
from rasp2d.lang.errors import Rasp2dError, Span
from rasp2d.lang.parser import parse, parse_file

STDLIB_DIR = Path(__file__).resolve().parent.parent / "stdlib"
MAX_EXACT = 2 ** 53
MAX_MEAN_DEN = 2 ** 40  # a mean's denominator bound beyond which comparisons cannot stay exact


# ------------------------------------------------------------------ elaboration values
@dataclass(frozen=True)
class NodeVal:
    nid: int


@dataclass(frozen=True)
class SymVal:
    """A string literal: becomes a token id once it meets a token-typed value."""

    text: str
    span: Span


@dataclass(frozen=True)
class MeanVal:
    """prefix_mean(x) kept exact as (prefix_sum(x), indices + 1): only comparable."""

    total: int
    count: int


@dataclass(frozen=True)
class FracVal:
    """A rational constant written with `/`: only meaningful next to a prefix_mean."""

    value: Fraction


@dataclass(frozen=True)
class TupleVal:
    """A compile-time tuple (e.g. the four bytes of a word): each element is its own value."""

    items: tuple["Value", ...]


@dataclass(frozen=True)
class TieVal:
    mode: str


@dataclass(frozen=True)
class DictVal:
    entries: tuple[tuple[int | str, "Value"], ...]
    span: Span


@dataclass(frozen=True)
class DefVal:
    d: ast.Def
    scope: "Scope"
    qualname: str


@dataclass(frozen=True)
class ModuleVal:
    name: str
    scope: "Scope"


Value = NodeVal | SymVal | MeanVal | FracVal | TupleVal | TieVal | DictVal | DefVal | ModuleVal


class Scope:
    def __init__(self, parent: "Scope | None" = None):
        self.names: dict[str, Value] = {}
        self.parent = parent

    def lookup(self, name: str) -> Value | None:
        s: Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None


BUILTINS = ("lookup", "prev", "prefix_sum", "prefix_mean", "prefix_count", "select_max", "attend",
            "min", "max", "abs", "clamp", "table", "int", "token", "parse_int", "token_of", "id", "from_id")


def show(e: ast.Expr) -> str:
    """Compact source-like text of an expression, used as the label of what it compiles to."""
    match e:
        case ast.IntLit(value=v):
            return str(v)
        case ast.StrLit(value=v):
            return repr(v).replace("'", '"')
        case ast.BoolLit(value=v):
            return "true" if v else "false"
        case ast.Name():
            return e.text
        case ast.Call(func=f, args=args, kwargs=kw):
            parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kw]
            return f"{f.text}({', '.join(parts)})"
        case ast.DictLit(entries=entries):
            return "{" + ", ".join(f"{k}: {show(v)}" for k, v in entries) + "}"
        case ast.BinOp(op=op, left=a, right=b):
            return f"({show(a)} {op} {show(b)})"
        case ast.UnaryOp(op=op, operand=a):
            return f"{op} {show(a)}" if op == "not" else f"-{show(a)}"
        case ast.IfExpr(cond=c, then=t, other=o):
            return f"(if {show(c)} then {show(t)} else {show(o)})"
        case ast.TupleLit(items=items):
            return "(" + ", ".join(show(i) for i in items) + ")"
        case ast.Index(base=b, index=i):
            return f"{show(b)}[{show(i)}]"
    return "?"


class Elaborator:
    def __init__(self, search_path: tuple[Path, ...] = (), files: dict[str, str] | None = None):
        self.graph = Graph()
        self.files = dict(files or {})  # path -> text, consulted before the disk (model bundles)
        self.search_path = tuple(search_path)
        self._modules: dict[Path, ModuleVal] = {}
        self._loading: set[Path] = set()
        self._named: set[int] = set()
        self._call_depth = 0
        self._chains: dict[tuple[str, int], list[int]] = {}  # and/or node -> flattened operands
        self._chain_nodes: set[int] = set()  # if/else results that a further `else if` may extend
        self.sources: dict[str, str] = {}

    # ================================================================ programs & modules
    def program(self, module: ast.Module) -> Graph:
        self.sources[module.path] = module.source
        g = self.graph
        settings = [i for i in module.items if isinstance(i, (ast.Vocab, ast.VocabFile, ast.Setting))]
        vocabs = [self._read_vocab(i, module.path) if isinstance(i, ast.VocabFile) else i
                  for i in settings if isinstance(i, (ast.Vocab, ast.VocabFile))]
        if not vocabs:
            raise Rasp2dError(Span(module.path, 1, 1),
                              "the program declares no vocabulary; add e.g. `vocab { a b c }`")
        if len(vocabs) > 1:
            raise Rasp2dError(vocabs[1].span, "vocabulary declared twice")
        vocab = vocabs[0].symbols
        if len(set(vocab)) != len(vocab):
            dup = next(s for s in vocab if vocab.count(s) > 1)
            raise Rasp2dError(vocabs[0].span, f"token {dup!r} appears twice in the vocabulary")
        g.vocab = tuple(vocab)
        for s in settings:
            if isinstance(s, ast.Setting):
                self._setting(s)
        scope = self._module_scope(module)
        emits = [i for i in module.items if isinstance(i, ast.Emit)]
        if len(emits) != 1:
            span = emits[1].span if emits else Span(module.path, 1, 1)
            raise Rasp2dError(span, "a program needs exactly one `emit` statement (the next token)"
                              if emits else "the program has no `emit` statement (the next token)")
        out = self.expr(emits[0].value, scope)
        g.output = self.as_token(out, emits[0].value, "emit").nid
        return g

    def _read_vocab(self, v: ast.VocabFile, importer: str) -> ast.Vocab:
        path = (Path(importer).resolve().parent / v.path).resolve()
        if str(path) in self.files:
            text = self.files[str(path)]
        else:
            try:
                text = path.read_text()
            except OSError as exc:
                raise Rasp2dError(v.span, f"cannot read vocabulary file {v.path}: {exc.strerror}") from None
        self.sources[str(path)] = text
        return ast.Vocab(v.span, tuple(line.strip() for line in text.splitlines() if line.strip()))

    def _setting(self, s: ast.Setting) -> None:
        g = self.graph
        if s.name in ("max_len", "max_new"):
            if not isinstance(s.value, int) or s.value < 1:
                raise Rasp2dError(s.span, f"{s.name} must be a positive integer")
            setattr(g, s.name, s.value)
        else:
            text = str(s.value)
            if text not in g.vocab:
                raise Rasp2dError(s.span, f"{s.name} token {text!r} is not in the vocabulary")
            setattr(g, s.name, text)

    def _module_scope(self, module: ast.Module) -> Scope:
        scope = Scope()
        for item in module.items:
            match item:
                case ast.Import():
                    scope.names[item.alias] = self._import(item, module.path)
                case ast.Def():
                    scope.names[item.name] = DefVal(item, scope, item.name)
                case ast.Let():
                    scope.names[item.name] = self._let(item, scope, item.name)
                case ast.LetTuple():
                    self._let_tuple(item, scope, "")
        return scope

    def _let_tuple(self, let: ast.LetTuple, scope: Scope, prefix: str) -> None:
        val = self.expr(let.value, scope)
        if not isinstance(val, TupleVal):
            raise Rasp2dError(let.span, f"`let ({', '.join(let.names)}) = ...` needs a tuple, "
                              f"but `{show(let.value)}` is not one")
        if len(val.items) != len(let.names):
            raise Rasp2dError(let.span, f"cannot unpack a tuple of {len(val.items)} into "
                              f"{len(let.names)} names")
        for name, item in zip(let.names, val.items):
            scope.names[name] = self._name_value(item, prefix + name)

    def _import(self, imp: ast.Import, importer: str) -> ModuleVal:
        rel = Path(*imp.module).with_suffix(".rasp2d")
        roots = [Path(importer).resolve().parent, *self.search_path, STDLIB_DIR]
        if imp.module[0] == "stdlib":
            roots.append(STDLIB_DIR.parent)
        for root in roots:
            cand = (root / rel).resolve()
            if str(cand) in self.files or cand.is_file():
                break
        else:
            raise Rasp2dError(imp.span, f"cannot find module {'.'.join(imp.module)!r} "
                              f"(looked for {rel} next to {Path(importer).name} and in stdlib/)")
        if cand in self._loading:
            raise Rasp2dError(imp.span, f"import cycle through {cand.name}")
        if cand not in self._modules:
            self._loading.add(cand)
            mod = parse(self.files[str(cand)], str(cand)) if str(cand) in self.files else parse_file(cand)
            self.sources[str(cand)] = mod.source
            for item in mod.items:
                if isinstance(item, (ast.Vocab, ast.VocabFile, ast.Setting, ast.Emit)):
                    raise Rasp2dError(item.span, "a module imported by another may only contain "
                                      "imports, defs and lets (no vocab, settings or emit)")
            self._modules[cand] = ModuleVal(".".join(imp.module), self._module_scope(mod))
            self._loading.discard(cand)
        return self._modules[cand]

    def _let(self, let: ast.Let, scope: Scope, qualname: str) -> Value:
        val = self.expr(let.value, scope)
        if let.ann is not None:
            val = self._check_annotation(val, let)
        return self._name_value(val, qualname)

    def _name_value(self, val: Value, qualname: str) -> Value:
        """Label a node after the `let` that named it (first name wins), for the manifest."""
        if isinstance(val, NodeVal) and val.nid not in self._named:
            g = self.graph.g
            node = g.nodes[val.nid]["node"]
            if not isinstance(node.op, (Const, Tokens, Indices)):
                g.nodes[val.nid]["node"] = replace(node, label=qualname)
                self._named.add(val.nid)
        return val

    def _check_annotation(self, val: Value, let: ast.Let) -> Value:
        ann = let.ann
        if ann.kind == "token":
            return self.as_token(val, let.value, f"let {let.name}")
        node = self.node_of(val, let.value)
        t = node.type
        if t.kind == "token":
            raise Rasp2dError(ann.span, f"{let.name} is declared {ann.kind} but its value is a token; "
                              "convert with int(...)")
        if ann.kind == "bool" and t.kind != "bool":
            raise Rasp2dError(ann.span, f"{let.name} is declared bool but its value is {t}")
        if not (ann.lo <= t.lo and t.hi <= ann.hi):
            raise Rasp2dError(ann.span, f"range mismatch: {let.name} is declared "
                              f"{'bool' if ann.kind == 'bool' else f'int[{ann.lo}..{ann.hi}]'} but its "
                              f"value can be anywhere in {t.lo}..{t.hi}; narrow it with clamp(x, lo, hi) "
                              "or fix the declaration")
        return val

    # ================================================================ node construction
    def mk(self, op: Op, kind: str, span: Span, label: str, rng: tuple[int, int] | None = None) -> NodeVal:
        g = self.graph
        args = operands(op)
        if isinstance(op, ELEMENTWISE):
            nodes = [g.node(a) for a in args]
            if all(isinstance(n.op, Const) for n in nodes):
                v = semantics.apply(op, tuple(n.op.value for n in nodes))
                return self.const(v, span, "bool" if kind == "bool" else ("token" if kind == "token" else "int"))
            if rng is None:
                rng = semantics.value_range(op, tuple((n.type.lo, n.type.hi) for n in nodes))
        assert rng is not None
        lo, hi = rng
        if max(abs(lo), abs(hi)) >= MAX_EXACT:
            raise Rasp2dError(span, f"value range {lo}..{hi} of `{label}` exceeds 2^53, beyond exact "
                              "float64 integers; narrow the operands' ranges")
        den = 1
        means = [g.node(a).type for a in args if g.node(a).type.kind == "mean"]
        if means:
            if not isinstance(op, (Affine, Step)):
                raise Rasp2dError(span, f"`{label}`: a mean (the result of tie=average) can only be "
                                  "compared (<, <=, ==, ...) or combined linearly (+, -, * constant); "
                                  "compare it first, e.g. `m >= 1/2`")
            if isinstance(op, Affine):
                kind = "mean"
                for t in means:
                    den *= t.den
                if den > MAX_MEAN_DEN:
                    raise Rasp2dError(span, f"`{label}` combines several means: its denominator can "
                                      f"reach {den}, too fine to compare exactly; compare each mean "
                                      "on its own")
        return NodeVal(g.add(op, VType(kind, lo, hi, den), label, span))

    def mean(self, op: Op, value: NodeVal, default: NodeVal | None, e: ast.Call, what: str) -> NodeVal:
        """The node of a tie=average attention: a mean of integer values, denominator <= max_len."""
        if any(self.graph.node(a).type.kind == "mean" for a in operands(op)):
            raise Rasp2dError(e.span, f"`{show(e)}`: a mean (the result of tie=average) can only be "
                              "compared or combined linearly, not used inside another attention")
        vt = self.graph.node(value.nid).type
        if vt.kind == "token":
            raise Rasp2dError(e.span, f"{what}(..., tie=average) averages numbers; `{show(e)}` has "
                              "token values: convert them with int(...) or use tie=latest")
        lo, hi = vt.lo, vt.hi
        if default is not None:
            dt = self.graph.node(default.nid).type
            lo, hi = min(lo, dt.lo), max(hi, dt.hi)
        nid = self.graph.add(op, VType("mean", lo, hi, self.graph.max_len), show(e), e.span)
        return NodeVal(nid)

    def const(self, v: int, span: Span, kind: str = "int") -> NodeVal:
        return NodeVal(self.graph.add(Const(v), VType(kind, v, v), str(v), span))

    def affine(self, terms: list[tuple[int, int]], const: int, span: Span, label: str,
               kind: str = "int") -> NodeVal:
        """Build a normalised affine node: nested affines flattened, like terms merged."""
        g = self.graph
        acc: dict[int, int] = {}
        for nid, c in terms:
            op = g.node(nid).op
            if isinstance(op, Affine):
                const += c * op.const
                for sub, sc in op.terms:
                    acc[sub] = acc.get(sub, 0) + c * sc
            elif isinstance(op, Const):
                const += c * op.value
            else:
                acc[nid] = acc.get(nid, 0) + c
        items = tuple(sorted((n, c) for n, c in acc.items() if c != 0))
        if not items:
            return self.const(const, span, kind)
        if len(items) == 1 and items[0][1] == 1 and const == 0 and g.node(items[0][0]).type.kind in (kind, "mean"):
            return NodeVal(items[0][0])  # x itself (but 1 * int(b) stays an int, not the bool b)
        return self.mk(Affine(items, const), kind, span, label)

    def node_of(self, val: Value, e: ast.Expr):
        if isinstance(val, NodeVal):
            return self.graph.node(val.nid)
        what = {SymVal: "a string (only allowed where a token is expected)",
                MeanVal: "a prefix_mean (it can only be compared with a number or another prefix_mean)",
                FracVal: "a fraction (only allowed in comparisons, e.g. `m >= 1/2`; use // for "
                         "integer division)",
                TieVal: "a tie mode", TupleVal: "a tuple (take an element with x[i] or `let (a, b) = x`)", DictVal: "a table literal (only allowed in table(...))",
                DefVal: "a function (call it with arguments)", ModuleVal: "a module"}[type(val)]
        raise Rasp2dError(e.span, f"`{show(e)}` is {what}, not a sequence value")

    def as_num(self, val: Value, e: ast.Expr, what: str) -> NodeVal:
        node = self.node_of(val, e)
        if node.type.kind == "token":
            raise Rasp2dError(e.span, f"{what}: `{show(e)}` is a token, not a number; "
                              "convert it with int(...)")
        return NodeVal(node.id)

    def as_bool(self, val: Value, e: ast.Expr, what: str) -> NodeVal:
        node = self.node_of(val, e)
        if node.type.kind != "bool":
            raise Rasp2dError(e.span, f"{what}: `{show(e)}` is {node.type}, expected bool; "
                              "compare it, e.g. `x != 0`")
        return NodeVal(node.id)

    def token_id(self, text: str, span: Span) -> int:
        try:
            return self.graph.vocab.index(text)
        except ValueError:
            raise Rasp2dError(span, f"{text!r} is not in the vocabulary") from None

    def as_token(self, val: Value, e: ast.Expr, what: str) -> NodeVal:
        """A token-typed node; strings become token constants, ints map to the token of their text."""
        if isinstance(val, SymVal):
            return self.const(self.token_id(val.text, val.span), val.span, "token")
        node = self.node_of(val, e)
        if node.type.kind == "token":
            return NodeVal(node.id)
        if node.type.kind == "bool":
            raise Rasp2dError(e.span, f"{what}: `{show(e)}` is bool; choose tokens with if ... then ... else")
        if node.type.kind == "mean":
            raise Rasp2dError(e.span, f"{what}: `{show(e)}` is a mean (the result of tie=average), not a "
                              "token; compare it first, e.g. `if m >= 1/2 then \"a\" else \"b\"`")
        return self.int_to_token(NodeVal(node.id), e)

    def int_to_token(self, v: NodeVal, e: ast.Expr) -> NodeVal:
        t = self.graph.node(v.nid).type
        if t.size > 4096:
            raise Rasp2dError(e.span, f"cannot turn `{show(e)}` (range {t.lo}..{t.hi}) into tokens: "
                              "range too large; clamp it first")
        entries = []
        for x in range(t.lo, t.hi + 1):
            if str(x) not in self.graph.vocab:
                raise Rasp2dError(e.span, f"`{show(e)}` can be {x} (its range is {t.lo}..{t.hi}) but "
                                  f"{str(x)!r} is not a token; add it to the vocabulary or clamp the value")
            entries.append((x, self.graph.vocab.index(str(x))))
        return self.mk(Table(v.nid, tuple(entries), entries[0][1]), "token", e.span, f"token({show(e)})")

    # ================================================================ expressions
    def expr(self, e: ast.Expr, scope: Scope) -> Value:
        match e:
            case ast.IntLit(value=v):
                return self.const(v, e.span)
            case ast.BoolLit(value=v):
                return self.const(int(v), e.span, "bool")
            case ast.StrLit(value=v):
                return SymVal(v, e.span)
            case ast.Name():
                return self.name(e, scope)
            case ast.DictLit(entries=entries):
                return DictVal(tuple((k, self.expr(v, scope)) for k, v in entries), e.span)
            case ast.UnaryOp(op="-", operand=a):
                x = self.as_num(self.expr(a, scope), a, "negation")
                return self.affine([(x.nid, -1)], 0, e.span, show(e))
            case ast.UnaryOp(op="not", operand=a):
                x = self.as_bool(self.expr(a, scope), a, "not")
                return self.affine([(x.nid, -1)], 1, e.span, show(e), "bool")
            case ast.BinOp(op=op):
                return self.binop(e, scope)
            case ast.IfExpr(cond=c, then=t, other=o):
                cond = self.as_bool(self.expr(c, scope), c, "if condition")
                return self.select(cond, self.expr(t, scope), t, self.expr(o, scope), o, e)
            case ast.TupleLit(items=items):
                return TupleVal(tuple(self.expr(i, scope) for i in items))
            case ast.Index(base=b, index=ie):
                iv = self.node_of(self.expr(ie, scope), ie)
                if not isinstance(iv.op, Const):
                    raise Rasp2dError(ie.span, f"tuple index `{show(ie)}` must be a compile-time constant")
                i = iv.op.value
                tv = self.expr(b, scope)
                if not isinstance(tv, TupleVal):
                    raise Rasp2dError(e.span, f"`{show(b)}` is not a tuple; only tuples can be indexed")
                if not 0 <= i < len(tv.items):
                    raise Rasp2dError(e.span, f"index {i} out of range for a tuple of {len(tv.items)}")
                return tv.items[i]
            case ast.Call():
                return self.call(e, scope)
        raise Rasp2dError(e.span, f"unsupported expression `{show(e)}`")

    def select(self, cond: NodeVal, tv: Value, t: ast.Expr, ov: Value, o: ast.Expr, e: ast.Expr) -> Value:
        if isinstance(tv, TupleVal) or isinstance(ov, TupleVal):
            if not (isinstance(tv, TupleVal) and isinstance(ov, TupleVal)) or len(tv.items) != len(ov.items):
                raise Rasp2dError(e.span, "if ... then ... else: both branches must be tuples of one length")
            return TupleVal(tuple(self.select(cond, a, t, b, o, e) for a, b in zip(tv.items, ov.items)))
        tn, on = self.unify(tv, t, ov, o, "if ... then ... else")
        kind = self._join_kind(tn, on)
        g = self.graph
        if isinstance(g.node(cond.nid).op, Const):
            return tn if g.node(cond.nid).op.value else on
        inner = g.node(on.nid).op
        if isinstance(inner, (Select, Case)) and on.nid in self._chain_nodes:
            conds, values, default = ((inner.cond,), (inner.then,), inner.other) if isinstance(inner, Select) \
                else (inner.conds, inner.values, inner.default)
            node = self.mk(Case((cond.nid, *conds), (tn.nid, *values), default), kind, e.span, show(e))
        else:
            node = self.mk(Select(cond.nid, tn.nid, on.nid), kind, e.span, show(e))
        self._chain_nodes.add(node.nid)
        return node

    def name(self, e: ast.Name, scope: Scope) -> Value:
        head, *rest = e.parts
        val = scope.lookup(head)
        if val is None:
            if head == "tokens" and not rest:
                return self.mk(Tokens(), "token", e.span, "tokens", (0, len(self.graph.vocab) - 1))
            if head == "indices" and not rest:
                return self.mk(Indices(), "int", e.span, "indices", (0, self.graph.max_len - 1))
            if head in ("latest", "average") and not rest:
                return TieVal(head)
            if head in BUILTINS:
                raise Rasp2dError(e.span, f"`{head}` is a built-in function; call it with arguments")
            raise Rasp2dError(e.span, f"unknown name `{head}`")
        for part in rest:
            if not isinstance(val, ModuleVal):
                raise Rasp2dError(e.span, f"`{e.text}`: only modules have members")
            inner = val.scope.names.get(part)
            if inner is None:
                raise Rasp2dError(e.span, f"module {val.name!r} has no `{part}`")
            val = inner
        return val

    def _join_kind(self, a: NodeVal, b: NodeVal) -> str:
        ka, kb = self.graph.node(a.nid).type.kind, self.graph.node(b.nid).type.kind
        return ka if ka == kb else "int"

    def unify(self, av: Value, ae: ast.Expr, bv: Value, be: ast.Expr, what: str) -> tuple[NodeVal, NodeVal]:
        """Bring two operands to one kind: strings meet tokens, bools widen to ints."""
        a_tok = isinstance(av, SymVal) or (isinstance(av, NodeVal) and self.graph.node(av.nid).type.kind == "token")
        b_tok = isinstance(bv, SymVal) or (isinstance(bv, NodeVal) and self.graph.node(bv.nid).type.kind == "token")
        if a_tok or b_tok:
            if not (a_tok and b_tok):
                other, oe = (bv, be) if a_tok else (av, ae)
                raise Rasp2dError(oe.span, f"{what}: `{show(oe)}` is {self.node_of(other, oe).type} "
                                  "but the other side is a token; use a string like \"a\", or int(...)")
            return self.as_token(av, ae, what), self.as_token(bv, be, what)
        return self.as_num(av, ae, what), self.as_num(bv, be, what)

    def binop(self, e: ast.BinOp, scope: Scope) -> Value:
        op, span, label = e.op, e.span, show(e)
        av, bv = self.expr(e.left, scope), self.expr(e.right, scope)
        if op in ("and", "or"):
            a = self.as_bool(av, e.left, op)
            b = self.as_bool(bv, e.right, op)
            return self.bool_chain(op, [a.nid, b.nid], span, label)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if any(isinstance(v, FracVal) for v in (av, bv)) and all(isinstance(v, (FracVal, NodeVal))
                                                                     for v in (av, bv)):
                if all(isinstance(v, FracVal) for v in (av, bv)):
                    raise Rasp2dError(span, "compare a value with a fraction, not two constants")
                return self.compare_fraction(op, av, e.left, bv, e.right, span, label)
            if any(isinstance(v, (MeanVal, FracVal)) for v in (av, bv)):
                return self.compare_means(op, av, e.left, bv, e.right, span, label)
            a, b = self.unify(av, e.left, bv, e.right, f"comparison {op}")
            if self.graph.node(a.nid).type.kind == "token" and op not in ("==", "!="):
                raise Rasp2dError(span, f"tokens can only be compared with == or !=; use int(...) to order them")
            return self.compare(op, a, b, span, label)
        if op == "/":
            nodes = [self.node_of(v, x) for v, x in ((av, e.left), (bv, e.right))]
            if not all(isinstance(n.op, Const) for n in nodes):
                raise Rasp2dError(span, "`/` divides constants only (a fraction to compare a prefix_mean "
                                  "with); use // for integer division by a constant")
            if nodes[1].op.value == 0:
                raise Rasp2dError(e.right.span, "division by zero")
            return FracVal(Fraction(nodes[0].op.value, nodes[1].op.value))
        a = self.as_num(av, e.left, f"operator {op}")
        b = self.as_num(bv, e.right, f"operator {op}")
        if op == "+":
            return self.affine([(a.nid, 1), (b.nid, 1)], 0, span, label)
        if op == "-":
            return self.affine([(a.nid, 1), (b.nid, -1)], 0, span, label)
        bn = self.graph.node(b.nid)
        an = self.graph.node(a.nid)
        if op == "*":
            if isinstance(bn.op, Const):
                return self.affine([(a.nid, bn.op.value)], 0, span, label)
            if isinstance(an.op, Const):
                return self.affine([(b.nid, an.op.value)], 0, span, label)
            return self.mk(Mul(a.nid, b.nid), "int", span, label)
        if not isinstance(bn.op, Const):
            raise Rasp2dError(e.right.span, f"`{op}` needs a constant divisor (got `{show(e.right)}`); "
                              "division by a sequence value is not supported")
        k = bn.op.value
        if k == 0:
            raise Rasp2dError(e.right.span, "division by zero")
        return self.mk(FloorDiv(a.nid, k) if op == "//" else Mod(a.nid, k), "int", span, label)

    def bool_chain(self, op: str, nids: list[int], span: Span, label: str) -> NodeVal:
        """`a or b or c ...` is [a + b + c ... >= 1] and `a and b ...` is [a + b ... >= n]: one
        step on a sum, however long the chain (nested and/or of one kind are flattened).  An
        `or` of equality tests on one operand becomes a single table (membership test)."""
        flat: list[int] = []
        for nid in nids:
            flat.extend(self._chains.get((op, nid), [nid]))
        flat = sorted(set(flat))
        g = self.graph
        if op == "or":
            eqs = [g.node(n).op for n in flat]
            if len(flat) > 1 and all(isinstance(o, Equals) for o in eqs) and len({o.a for o in eqs}) == 1:
                node = self.mk(Table(eqs[0].a, tuple(sorted((o.value, 1) for o in eqs)), 0), "bool", span, label)
                self._chains[(op, node.nid)] = flat
                return node
        total = self.affine([(n, 1) for n in flat], 0, span, f"{label} (count)")
        node = self.mk(Step(total.nid, 1 if op == "or" else len(flat)), "bool", span, label)
        if isinstance(g.node(node.nid).op, Step):
            self._chains[(op, node.nid)] = flat
        return node

    def compare(self, op: str, a: NodeVal, b: NodeVal, span: Span, label: str) -> NodeVal:
        """Every comparison becomes a step or an equality test on the difference a - b."""
        if op in (">", ">="):
            a, b, op = b, a, {">": "<", ">=": "<="}[op]
        d = self.affine([(a.nid, 1), (b.nid, -1)], 0, span, f"{label} (difference)")
        if self.graph.node(d.nid).type.kind == "mean":
            return self.compare_mean(op, d, span, label)
        if op == "==":
            return self.mk(Equals(d.nid, 0), "bool", span, label)
        if op == "!=":
            eq = self.mk(Equals(d.nid, 0), "bool", span, label)
            return self.affine([(eq.nid, -1)], 1, span, label, "bool")
        # a < b  <=>  b - a >= 1 ;  a <= b  <=>  b - a >= 0
        neg = self.affine([(d.nid, -1)], 0, span, label)
        return self.mk(Step(neg.nid, 1 if op == "<" else 0), "bool", span, label)

    def compare_mean(self, op: str, d: NodeVal, span: Span, label: str) -> NodeVal:
        """`d op 0` for a mean difference d: only steps [d >= 0] (a mean is never tested for
        equality directly: `d == 0` is [d >= 0] and [-d >= 0])."""
        ge = lambda x: self.mk(Step(x.nid, 0), "bool", span, label)
        neg = self.affine([(d.nid, -1)], 0, span, f"{label} (difference)")
        if op == "<=":
            return ge(neg)
        if op == "<":
            return self.affine([(ge(d).nid, -1)], 1, span, label, "bool")
        both = self.affine([(ge(d).nid, 1), (ge(neg).nid, 1)], -1, span, label, "bool")
        if op == "==":
            return both
        return self.affine([(both.nid, -1)], 1, span, label, "bool")

    def compare_fraction(self, op, av, ae, bv, be, span, label) -> NodeVal:
        """x op p/q for a number or mean x: q*x op p (q > 0), exact integer scaling."""
        if isinstance(av, FracVal):
            av, ae, bv, be = bv, be, av, ae
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        x = self.as_num(av, ae, f"comparison {op}")
        c = bv.value
        scaled = self.affine([(x.nid, c.denominator)], 0, span, f"{label} (scaled)")
        return self.compare(op, scaled, self.const(c.numerator, span), span, label)

    def compare_means(self, op, av, ae, bv, be, span, label) -> NodeVal:
        """Compare S/n with p/q exactly as the integer comparison q*S vs p*n."""
        def parts(v, e) -> tuple[int, Fraction | None, int]:
            if isinstance(v, MeanVal):
                return v.total, None, v.count
            if isinstance(v, FracVal):
                return -1, v.value, -1
            n = self.node_of(v, e)
            if not isinstance(n.op, Const):
                raise Rasp2dError(e.span, "a prefix_mean can only be compared with a constant "
                                  "or with another prefix_mean")
            return -1, Fraction(n.op.value), -1
        ta, ca, na = parts(av, ae)
        tb, cb, nb = parts(bv, be)
        if ca is not None and cb is not None:
            raise Rasp2dError(span, "compare a prefix_mean with a constant, not two constants")
        if ca is None and cb is None:  # both means over the same count: compare the sums
            return self.compare(op, NodeVal(ta), NodeVal(tb), span, label)
        if ca is None:  # S/n op c  <=>  den*S op num*n
            c = cb
            left = self.affine([(ta, c.denominator)], 0, span, label)
            right = self.affine([(na, c.numerator)], 0, span, label)
        else:
            c = ca
            left = self.affine([(nb, c.numerator)], 0, span, label)
            right = self.affine([(tb, c.denominator)], 0, span, label)
        return self.compare(op, left, right, span, label)

    # ================================================================ calls
    def call(self, e: ast.Call, scope: Scope) -> Value:
        fname = e.func.text
        target = scope.lookup(e.func.parts[0]) if e.func.parts else None
        if target is not None or len(e.func.parts) > 1:
            fn = self.name(e.func, scope)
            if not isinstance(fn, DefVal):
                raise Rasp2dError(e.span, f"`{fname}` is not a function")
            return self.call_def(fn, e, scope)
        if fname not in BUILTINS:
            raise Rasp2dError(e.func.span, f"unknown function `{fname}`")
        return getattr(self, f"builtin_{fname}")(e, scope)

    def call_def(self, fn: DefVal, e: ast.Call, scope: Scope) -> Value:
        d = fn.d
        if e.kwargs:
            raise Rasp2dError(e.span, f"{d.name}() takes positional arguments only")
        if len(e.args) != len(d.params):
            raise Rasp2dError(e.span, f"{d.name}() takes {len(d.params)} argument(s), got {len(e.args)}")
        if self._call_depth > 200:
            raise Rasp2dError(e.span, f"recursion in {d.name}(): functions are inlined and may not recurse")
        local = Scope(fn.scope)
        for p, a in zip(d.params, e.args):
            local.names[p] = self.expr(a, scope)
        self._call_depth += 1
        try:
            for let in d.body:
                if isinstance(let, ast.LetTuple):
                    self._let_tuple(let, local, f"{fn.qualname}.")
                else:
                    local.names[let.name] = self._let(let, local, f"{fn.qualname}.{let.name}")
            return self.expr(d.result, local)
        finally:
            self._call_depth -= 1

    def _args(self, e: ast.Call, names: tuple[str, ...], required: int,
              defaults: dict[str, ast.Expr] | None = None) -> dict[str, ast.Expr]:
        """Bind positional and keyword arguments of a built-in to parameter names."""
        fname = e.func.text
        if len(e.args) > len(names):
            raise Rasp2dError(e.span, f"{fname}() takes at most {len(names)} positional arguments "
                              f"({', '.join(names)}), got {len(e.args)}")
        bound = dict(zip(names, e.args))
        for k, v in e.kwargs:
            if k not in names:
                raise Rasp2dError(v.span, f"{fname}() has no argument `{k}` (it takes {', '.join(names)})")
            if k in bound:
                raise Rasp2dError(v.span, f"{fname}() got `{k}` twice")
            bound[k] = v
        for n in names[:required]:
            if n not in bound:
                raise Rasp2dError(e.span, f"{fname}() is missing its argument `{n}`")
        return {**(defaults or {}), **bound}

    def _const_args(self, fname: str, bound, scope, defaults: dict[str, int]) -> dict[str, int]:
        """Integer arguments that must be compile-time constants (with their defaults)."""
        out = {}
        for name, dflt in defaults.items():
            if name not in bound:
                out[name] = dflt
                continue
            n = self.node_of(self.expr(bound[name], scope), bound[name])
            if not isinstance(n.op, Const):
                raise Rasp2dError(bound[name].span, f"{fname}: {name} must be a constant")
            out[name] = n.op.value
        return out

    def _tie(self, e: ast.Call, bound, scope) -> str:
        if "tie" not in bound:
            return "latest"
        v = self.expr(bound["tie"], scope)
        if not isinstance(v, TieVal):
            raise Rasp2dError(bound["tie"].span, "tie must be `latest` or `average`")
        return v.mode

    def _num_or_token(self, bound, name, scope) -> NodeVal:
        v = self.expr(bound[name], scope)
        if isinstance(v, SymVal):
            return self.as_token(v, bound[name], name)
        return NodeVal(self.node_of(v, bound[name]).id)

    def builtin_lookup(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("key", "query", "value", "default", "tie"), 3)
        key, query = self.unify(self.expr(b["key"], scope), b["key"], self.expr(b["query"], scope),
                                b["query"], "lookup key/query")
        value = self._num_or_token(b, "value", scope)
        vkind = self.graph.node(value.nid).type.kind
        tie = self._tie(e, b, scope)
        vt = self.graph.node(value.nid).type
        if "default" not in b:
            # no default: the value at the nearest key (exactly the matching key when it exists)
            if tie == "average":
                return self.mean(Lookup(key.nid, query.nid, value.nid, None, tie), value, None, e, "lookup")
            return self.mk(Lookup(key.nid, query.nid, value.nid, None, tie), vkind, e.span, show(e),
                           (vt.lo, vt.hi))
        dv = self.expr(b["default"], scope)
        default = self.as_token(dv, b["default"], "lookup default") if vkind == "token" \
            else self.as_num(dv, b["default"], "lookup default")
        if tie == "average":
            return self.mean(Lookup(key.nid, query.nid, value.nid, default.nid, tie), value, default, e,
                             "lookup")
        dt = self.graph.node(default.nid).type
        kind = vkind if vkind == dt.kind else "int"
        return self.mk(Lookup(key.nid, query.nid, value.nid, default.nid, tie), kind, e.span, show(e),
                       (min(vt.lo, dt.lo), max(vt.hi, dt.hi)))

    def builtin_prev(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x", "k", "default"), 1)
        k = 1
        if "k" in b:
            kn = self.node_of(self.expr(b["k"], scope), b["k"])
            if not isinstance(kn.op, Const) or kn.op.value < 0:
                raise Rasp2dError(b["k"].span, "prev(x, k): k must be a non-negative constant")
            k = kn.op.value
        value = self._num_or_token(b, "x", scope)
        vt = self.graph.node(value.nid).type
        if "default" in b:
            dv = self.expr(b["default"], scope)
            default = self.as_token(dv, b["default"], "prev default") if vt.kind == "token" \
                else self.as_num(dv, b["default"], "prev default")
        else:
            default = self.const(vt.lo if vt.kind == "token" else 0, e.span, vt.kind)
        idx = self.mk(Indices(), "int", e.span, "indices", (0, self.graph.max_len - 1))
        query = self.affine([(idx.nid, 1)], -k, e.span, f"indices - {k}")
        dt = self.graph.node(default.nid).type
        kind = vt.kind if vt.kind == dt.kind else "int"
        return self.mk(Lookup(idx.nid, query.nid, value.nid, default.nid, "latest"), kind, e.span,
                       show(e), (min(vt.lo, dt.lo), max(vt.hi, dt.hi)))

    def _prefix_sum(self, x: NodeVal, span: Span, label: str) -> NodeVal:
        t = self.graph.node(x.nid).type
        n = self.graph.max_len
        return self.mk(PrefixSum(x.nid), "int", span, label, (min(t.lo, n * t.lo), max(t.hi, n * t.hi)))

    def builtin_prefix_sum(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x",), 1)
        return self._prefix_sum(self.as_num(self.expr(b["x"], scope), b["x"], "prefix_sum"), e.span, show(e))

    def builtin_prefix_count(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("cond",), 1)
        return self._prefix_sum(self.as_bool(self.expr(b["cond"], scope), b["cond"], "prefix_count"),
                                e.span, show(e))

    def builtin_prefix_mean(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x",), 1)
        total = self._prefix_sum(self.as_num(self.expr(b["x"], scope), b["x"], "prefix_mean"), e.span,
                                 f"prefix_sum({show(b['x'])})")
        idx = self.mk(Indices(), "int", e.span, "indices", (0, self.graph.max_len - 1))
        count = self.affine([(idx.nid, 1)], 1, e.span, "indices + 1")
        return MeanVal(total.nid, count.nid)

    def builtin_select_max(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("score", "value", "tie"), 2)
        score = self.as_num(self.expr(b["score"], scope), b["score"], "select_max score")
        value = self._num_or_token(b, "value", scope)
        vt = self.graph.node(value.nid).type
        tie = self._tie(e, b, scope)
        if tie == "average":
            return self.mean(SelectMax(score.nid, value.nid, tie), value, None, e, "select_max")
        return self.mk(SelectMax(score.nid, value.nid, tie), vt.kind, e.span, show(e), (vt.lo, vt.hi))

    def builtin_attend(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("q1", "q2", "k1", "k2", "value", "tie"), 5)
        q = tuple(self.as_num(self.expr(b[n], scope), b[n], f"attend {n}").nid for n in ("q1", "q2"))
        k = tuple(self.as_num(self.expr(b[n], scope), b[n], f"attend {n}").nid for n in ("k1", "k2"))
        value = self._num_or_token(b, "value", scope)
        vt = self.graph.node(value.nid).type
        tie = self._tie(e, b, scope)
        if tie == "average":
            return self.mean(Attend(q, k, value.nid, tie), value, None, e, "attend")
        return self.mk(Attend(q, k, value.nid, tie), vt.kind, e.span, show(e), (vt.lo, vt.hi))

    def _two_nums(self, e, scope, what):
        b = self._args(e, ("a", "b"), 2)
        return (self.as_num(self.expr(b["a"], scope), b["a"], what),
                self.as_num(self.expr(b["b"], scope), b["b"], what))

    def builtin_min(self, e: ast.Call, scope: Scope) -> Value:
        a, b = self._two_nums(e, scope, "min")
        return self.mk(Min(a.nid, b.nid), self._join_kind(a, b), e.span, show(e))

    def builtin_max(self, e: ast.Call, scope: Scope) -> Value:
        a, b = self._two_nums(e, scope, "max")
        return self.mk(Max(a.nid, b.nid), self._join_kind(a, b), e.span, show(e))

    def builtin_abs(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x",), 1)
        x = self.as_num(self.expr(b["x"], scope), b["x"], "abs")
        return self.mk(Abs(x.nid), "int", e.span, show(e))

    def builtin_clamp(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x", "lo", "hi"), 3)
        x = self.as_num(self.expr(b["x"], scope), b["x"], "clamp")
        bounds = []
        for n in ("lo", "hi"):
            node = self.node_of(self.expr(b[n], scope), b[n])
            if not isinstance(node.op, Const):
                raise Rasp2dError(b[n].span, f"clamp {n} must be a constant")
            bounds.append(node.op.value)
        lo, hi = bounds
        if lo > hi:
            raise Rasp2dError(e.span, f"clamp bounds {lo} > {hi}")
        t = self.graph.node(x.nid).type
        if t.lo >= lo and t.hi <= hi:
            return x
        lo_c, hi_c = self.const(lo, e.span), self.const(hi, e.span)
        inner = self.mk(Max(x.nid, lo_c.nid), "int", e.span, show(e)) if t.lo < lo else x
        return self.mk(Min(inner.nid, hi_c.nid), "int", e.span, show(e)) if t.hi > hi else inner

    def builtin_table(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x", "entries", "default"), 2)
        xv = self.expr(b["x"], scope)
        x = NodeVal(self.node_of(xv, b["x"]).id)
        xkind = self.graph.node(x.nid).type.kind
        d = self.expr(b["entries"], scope)
        if not isinstance(d, DictVal):
            raise Rasp2dError(b["entries"].span, "table(x, {key: value, ...}) needs a table literal")
        keys, outs = [], []
        for k, v in d.entries:
            if xkind == "token":
                keys.append(self.token_id(str(k), d.span))
            elif isinstance(k, int):
                keys.append(k)
            else:
                raise Rasp2dError(d.span, f"table key {k!r} must be an integer (x is {xkind})")
            outs.append(v)
        if "default" in b:
            outs.append(self.expr(b["default"], scope))
        exprs = [ve for _, ve in d.entries] + ([b["default"]] if "default" in b else [])
        out_tok = any(isinstance(o, SymVal) or (isinstance(o, NodeVal) and
                                                 self.graph.node(o.nid).type.kind == "token") for o in outs)
        consts = []
        for o, oe in zip(outs, exprs):
            n = self.as_token(o, oe, "table value") if out_tok else self.as_num(o, oe, "table value")
            node = self.graph.node(n.nid)
            if not isinstance(node.op, Const):
                raise Rasp2dError(oe.span, "table values must be constants")
            consts.append(node.op.value)
        if "default" not in b:
            consts.append(0 if not out_tok else consts[0])
        kinds = {self.graph.node(self.as_num(o, oe, "").nid).type.kind for o, oe in zip(outs, exprs)} \
            if not out_tok else {"token"}
        kind = "token" if out_tok else ("bool" if kinds == {"bool"} else "int")
        return self.mk(Table(x.nid, tuple(zip(keys, consts[:-1])), consts[-1]), kind, e.span, show(e))

    def builtin_int(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x", "default"), 1)
        x = self.expr(b["x"], scope)
        node = self.node_of(x, b["x"])
        if node.type.kind == "int":
            return NodeVal(node.id)
        if node.type.kind == "bool":  # same value, now an int (costs nothing: an affine copy)
            return self.mk(Affine(((node.id, 1),), 0), "int", e.span, show(e))
        default = 0
        if "default" in b:
            dn = self.node_of(self.expr(b["default"], scope), b["default"])
            if not isinstance(dn.op, Const):
                raise Rasp2dError(b["default"].span, "int(x, default=...) needs a constant default")
            default = dn.op.value
        entries = []
        for tid, sym in enumerate(self.graph.vocab):
            try:
                entries.append((tid, int(sym)))
            except ValueError:
                pass
        return self.mk(Table(node.id, tuple(entries), default), "int", e.span, show(e))

    def builtin_parse_int(self, e: ast.Call, scope: Scope) -> Value:
        """parse_int(x, "B", 16, default=-1): the number spelled after a prefix in a token's text,
        e.g. "B1f" -> 31; tokens of other shapes give the default (a free embedding feature)."""
        b = self._args(e, ("x", "prefix", "base", "default"), 2)
        x = self.expr(b["x"], scope)
        node = self.node_of(x, b["x"])
        if node.type.kind != "token":
            raise Rasp2dError(b["x"].span, "parse_int(x, prefix, ...) reads a token's text; x is not a token")
        pre = self.expr(b["prefix"], scope)
        if not isinstance(pre, SymVal):
            raise Rasp2dError(b["prefix"].span, "parse_int: the prefix must be a string")
        consts = self._const_args("parse_int", b, scope, {"base": 10, "default": 0})
        entries = []
        for tid, sym in enumerate(self.graph.vocab):
            if sym.startswith(pre.text) and len(sym) > len(pre.text):
                try:
                    entries.append((tid, int(sym[len(pre.text):], consts["base"])))
                except ValueError:
                    pass
        return self.mk(Table(node.id, tuple(entries), consts["default"]), "int", e.span, show(e))

    def builtin_token_of(self, e: ast.Call, scope: Scope) -> Value:
        """token_of(x, "B", 16, 2): the token spelled prefix + x in base (zero-padded to width),
        e.g. token_of(31, "B") = "B1f"; the inverse of parse_int."""
        b = self._args(e, ("x", "prefix", "base", "width"), 2)
        x = self.as_num(self.expr(b["x"], scope), b["x"], "token_of")
        pre = self.expr(b["prefix"], scope)
        if not isinstance(pre, SymVal):
            raise Rasp2dError(b["prefix"].span, "token_of: the prefix must be a string")
        consts = self._const_args("token_of", b, scope, {"base": 16, "width": 2})
        t = self.graph.node(x.nid).type
        if t.size > 65536:
            raise Rasp2dError(e.span, f"token_of: `{show(b['x'])}` ranges over {t.lo}..{t.hi}; clamp it first")
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"
        entries = []
        for v in range(t.lo, t.hi + 1):
            n, text = v, ""
            while n or not text:
                n, r = divmod(n, consts["base"])
                text = digits[r] + text
            text = pre.text + text.rjust(consts["width"], "0")
            if v < 0 or text not in self.graph.vocab:
                raise Rasp2dError(e.span, f"token_of: `{show(b['x'])}` can be {v} but {text!r} is not in "
                                  "the vocabulary; clamp the value")
            entries.append((v, self.graph.vocab.index(text)))
        return self.mk(Table(x.nid, tuple(entries), entries[0][1]), "token", e.span, show(e))

    def builtin_id(self, e: ast.Call, scope: Scope) -> Value:
        """id(t): a token's vocabulary id as an int (free: the same value, another kind)."""
        b = self._args(e, ("x",), 1)
        t = self.as_token(self.expr(b["x"], scope), b["x"], "id()")
        return self.mk(Affine(((t.nid, 1),), 0), "int", e.span, show(e))

    def builtin_from_id(self, e: ast.Call, scope: Scope) -> Value:
        """from_id(n): the token with vocabulary id n (n must stay within the vocabulary)."""
        b = self._args(e, ("x",), 1)
        x = self.as_num(self.expr(b["x"], scope), b["x"], "from_id")
        t = self.graph.node(x.nid).type
        if t.lo < 0 or t.hi >= len(self.graph.vocab):
            raise Rasp2dError(e.span, f"from_id: `{show(b['x'])}` ranges over {t.lo}..{t.hi}, outside the "
                              f"vocabulary ids 0..{len(self.graph.vocab) - 1}; clamp it first")
        return self.mk(Affine(((x.nid, 1),), 0), "token", e.span, show(e))

    def builtin_token(self, e: ast.Call, scope: Scope) -> Value:
        b = self._args(e, ("x",), 1)
        return self.as_token(self.expr(b["x"], scope), b["x"], "token()")


def elaborate(module: ast.Module, search_path: tuple[Path, ...] = (),
              files: dict[str, str] | None = None) -> tuple[Graph, dict[str, str]]:
    el = Elaborator(search_path, files)
    graph = el.program(module)
    return graph, el.sources


def elaborate_source(source: str, path: str = "<string>") -> Graph:
    return elaborate(parse(source, path))[0]
