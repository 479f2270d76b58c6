"""Text -> `ast.Module`, with lark (LALR) and one-line errors that name file:line:col."""

from __future__ import annotations

import ast as pyast
from functools import lru_cache
from pathlib import Path

import lark
from lark import Token, Transformer, v_args

from rasp2d.lang import ast
from rasp2d.lang.errors import Rasp2dError, Span

GRAMMAR = Path(__file__).with_name("grammar.lark")

_FRIENDLY = {
    "NAME": "a name", "INT": "a number", "SIGNED_INT": "a number", "STRING": "a string",
    "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','",
    "EQUAL": "'='", "COLON": "':'", "CMPOP": "a comparison", "ADDOP": "'+' or '-'",
    "MULOP": "'*', '//' or '%'", "IF": "'if'", "THEN": "'then'", "ELSE": "'else'",
    "LET": "'let'", "DEF": "'def'", "EMIT": "'emit'", "RETURN": "'return'",
    "$END": "end of file",
}


@lru_cache(maxsize=1)
def _lark() -> lark.Lark:
    return lark.Lark(GRAMMAR.read_text(), parser="lalr", propagate_positions=True,
                     maybe_placeholders=True)


def _unquote(text: str) -> str:
    return pyast.literal_eval(text)


class _ToAst(Transformer):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _span(self, meta_or_tok) -> Span:
        line = getattr(meta_or_tok, "line", 0) or 0
        col = getattr(meta_or_tok, "column", 0) or 0
        return Span(self.path, line, col)

    # ---------------------------------------------------------------- literals
    def signed_int(self, items):
        return int(items[0])

    def literal(self, items):
        (tok,) = items
        if isinstance(tok, int):
            return tok
        if tok.type == "STRING":
            return _unquote(tok)
        return str(tok)

    def symbol(self, items):
        (tok,) = items
        return _unquote(tok) if tok.type == "STRING" else str(tok)

    def qual_name(self, items):
        return ast.Name(self._span(items[0]), tuple(str(t) for t in items))

    def dotted_name(self, items):
        return tuple(str(t) for t in items)

    @v_args(meta=True)
    def int_lit(self, meta, items):
        return ast.IntLit(self._span(meta), int(items[0]))

    @v_args(meta=True)
    def str_lit(self, meta, items):
        return ast.StrLit(self._span(meta), _unquote(items[0]))

    @v_args(meta=True)
    def true_lit(self, meta, items):
        return ast.BoolLit(self._span(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta, items):
        return ast.BoolLit(self._span(meta), False)

    def name_ref(self, items):
        return items[0]

    # ------------------------------------------------------------- expressions
    @v_args(meta=True)
    def call(self, meta, items):
        func, args = items
        pos, kw = [], []
        for a in args or ():
            if isinstance(a, tuple):
                kw.append(a)
            else:
                if kw:
                    raise Rasp2dError(a.span, "positional argument after keyword argument")
                pos.append(a)
        return ast.Call(self._span(meta), func, tuple(pos), tuple(kw))

    def args(self, items):
        return items

    def kwarg(self, items):
        return (str(items[0]), items[1])

    def entry(self, items):
        return (items[0], items[1])

    @v_args(meta=True)
    def dict_lit(self, meta, items):
        entries = tuple(e for e in items if e is not None)
        return ast.DictLit(self._span(meta), entries)

    @v_args(meta=True)
    def binop(self, meta, items):
        left, op, right = items
        return ast.BinOp(self._span(op), str(op), left, right)

    @v_args(meta=True)
    def compare(self, meta, items):
        left, op, right = items
        return ast.BinOp(self._span(op), str(op), left, right)

    @v_args(meta=True)
    def and_op(self, meta, items):
        return ast.BinOp(self._span(meta), "and", items[0], items[1])

    @v_args(meta=True)
    def or_op(self, meta, items):
        return ast.BinOp(self._span(meta), "or", items[0], items[1])

    @v_args(meta=True)
    def not_op(self, meta, items):
        return ast.UnaryOp(self._span(meta), "not", items[0])

    @v_args(meta=True)
    def neg(self, meta, items):
        return ast.UnaryOp(self._span(meta), "-", items[0])

    @v_args(meta=True)
    def tuple_lit(self, meta, items):
        return ast.TupleLit(self._span(meta), tuple(items))

    @v_args(meta=True)
    def index(self, meta, items):
        return ast.Index(self._span(meta), items[0], items[1])

    @v_args(meta=True)
    def let_tuple(self, meta, items):
        *names, value = items
        return ast.LetTuple(self._span(meta), tuple(str(n) for n in names), value)

    @v_args(meta=True)
    def if_expr(self, meta, items):
        return ast.IfExpr(self._span(meta), *items)

    # -------------------------------------------------------------- statements
    @v_args(meta=True)
    def int_type(self, meta, items):
        return ast.TypeAnn(self._span(meta), "int", items[0], items[1])

    @v_args(meta=True)
    def bool_type(self, meta, items):
        return ast.TypeAnn(self._span(meta), "bool", 0, 1)

    @v_args(meta=True)
    def token_type(self, meta, items):
        return ast.TypeAnn(self._span(meta), "token")

    @v_args(meta=True)
    def let_stmt(self, meta, items):
        name, ann, value = items
        return ast.Let(self._span(meta), str(name), ann, value)

    def params(self, items):
        return tuple(str(t) for t in items)

    @v_args(meta=True)
    def def_expr(self, meta, items):
        name, params, body = items
        return ast.Def(self._span(meta), str(name), params or (), (), body)

    @v_args(meta=True)
    def def_block(self, meta, items):
        name, params, *lets, result = items
        return ast.Def(self._span(meta), str(name), params or (), tuple(lets), result)

    @v_args(meta=True)
    def import_stmt(self, meta, items):
        module, alias = items
        return ast.Import(self._span(meta), module, str(alias) if alias else module[-1])

    @v_args(meta=True)
    def tokens_decl(self, meta, items):
        return ast.Vocab(self._span(meta), tuple(items))

    @v_args(meta=True)
    def vocab_file(self, meta, items):
        return ast.VocabFile(self._span(meta), _unquote(items[0]))

    @v_args(meta=True)
    def setting(self, meta, items):
        name, value = items
        return ast.Setting(self._span(meta), str(name), value)

    @v_args(meta=True)
    def emit_stmt(self, meta, items):
        return ast.Emit(self._span(meta), items[0])

    def start(self, items):
        return tuple(items)


def _describe_expected(expected) -> str:
    names = sorted({_FRIENDLY.get(e, repr(e.lower()) if e.isupper() else e) for e in expected})
    if len(names) > 6:
        names = names[:6] + ["..."]
    return ", ".join(names)


def parse(source: str, path: str = "<string>") -> ast.Module:
    try:
        tree = _lark().parse(source)
    except lark.exceptions.UnexpectedToken as exc:
        tok = exc.token
        what = "end of file" if tok.type == "$END" else f"{str(tok)!r}"
        raise Rasp2dError(Span(path, exc.line, exc.column),
                          f"syntax error: unexpected {what}; expected {_describe_expected(exc.expected)}"
                          ) from None
    except lark.exceptions.UnexpectedCharacters as exc:
        raise Rasp2dError(Span(path, exc.line, exc.column),
                          f"syntax error: unexpected character {source[exc.pos_in_stream]!r}") from None
    except lark.exceptions.UnexpectedEOF as exc:
        raise Rasp2dError(Span(path, 0, 0), "syntax error: unexpected end of file") from None
    try:
        items = _ToAst(path).transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, Rasp2dError):
            raise exc.orig_exc from None
        raise
    return ast.Module(path, source, items)


def parse_file(path: str | Path) -> ast.Module:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise Rasp2dError(Span(str(path), 0, 0), f"cannot read program: {exc.strerror}") from None
    return parse(text, str(path))
