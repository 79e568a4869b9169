"""Query cost: the most list items an operation can return, estimated before it runs.

Every list field of the schema takes a `limit` argument (1..PAGE_MAX, the REST page limit), so
the size of a result is bounded by the page sizes along each path: a field with a `limit`
contributes `limit × (the product of the limits above it)` items. The sum over the operation's
fields (aliases and fragments counted where they are used) is its cost; a validation rule
refuses an operation whose cost exceeds `graphql_max_cost` with `extensions.code =
QUERY_TOO_COSTLY`, before a resolver or an SQL statement runs.

A `limit` given as a variable counts at its declared default, else at PAGE_MAX (validation runs
once per query text, before variables are known, and its result is cached).

The issue's exploit `{decks(limit:1){items{cards{deck{cards{deck{cards{id}}}}}}}}` costs
1 + 20 + 400 + 8,000 = 8,421 items at the default page size of 20.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)

from flashcards.models import PAGE_MAX

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
LIMIT_ARG = "limit"


def _limit(node: FieldNode, default: Any, variables: dict[str, Any]) -> int:
    for arg in node.arguments or ():
        if arg.name.value != LIMIT_ARG:
            continue
        value = arg.value
        if isinstance(value, IntValueNode):
            return max(0, min(int(value.value), PAGE_MAX))
        if isinstance(value, VariableNode):
            declared = variables.get(value.name.value)
            return declared if isinstance(declared, int) else PAGE_MAX
        return PAGE_MAX
    return default if isinstance(default, int) and 0 < default <= PAGE_MAX else PAGE_MAX


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def cost(
        self, selections: SelectionSetNode | None, parent: GraphQLNamedType | None, mult: int,
        seen: frozenset[str] = frozenset(),
    ) -> int:
        if selections is None or not isinstance(parent, GraphQLObjectType):
            return 0
        total = 0
        for sel in selections.selections:
            if isinstance(sel, FieldNode):
                field = parent.fields.get(sel.name.value)
                if field is None:
                    continue  # __typename, or an unknown field (another rule reports it)
                inner = mult
                arg = field.args.get(LIMIT_ARG)
                if arg is not None:
                    inner = mult * _limit(sel, arg.default_value, self.variables)
                    total += inner
                total += self.cost(sel.selection_set, get_named_type(field.type), inner, seen)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                target = self.schema.get_type(cond.name.value) if cond else parent
                total += self.cost(sel.selection_set, target, mult, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                frag = self.fragments.get(name)
                if frag is None or name in seen:
                    continue  # unknown or cyclic: NoFragmentCycles / KnownFragmentNames report it
                target = self.schema.get_type(frag.type_condition.name.value)
                total += self.cost(frag.selection_set, target, mult, seen | {name})
        return total


def _declared_defaults(op: OperationDefinitionNode) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for var in op.variable_definitions or ():
        if isinstance(var.default_value, IntValueNode):
            defaults[var.variable.name.value] = int(var.default_value.value)
    return defaults


def operation_cost(
    schema: GraphQLSchema, op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> int:
    root = schema.get_root_type(op.operation)
    return _Walker(schema, fragments, _declared_defaults(op)).cost(op.selection_set, root, 1)


def estimate_cost(schema: GraphQLSchema, document: DocumentNode) -> int:
    """The largest cost of the document's operations."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return max((operation_cost(schema, op, fragments) for op in ops), default=0)


def cost_limit_rule(max_cost: int) -> type[ValidationRule]:
    """A validation rule class (built once: `ValidationCache` keys on the rule classes)."""

    class QueryCostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self._fragments: dict[str, FragmentDefinitionNode] | None = None

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            ctx = self.context
            if self._fragments is None:
                self._fragments = {
                    d.name.value: d
                    for d in ctx.document.definitions
                    if isinstance(d, FragmentDefinitionNode)
                }
            cost = operation_cost(ctx.schema, node, self._fragments)
            if cost > max_cost:
                ctx.report_error(
                    GraphQLError(
                        f"The query may return up to {cost} list items (page sizes × nesting); "
                        f"the limit is {max_cost}. Ask for smaller pages (`limit`) or fewer "
                        "nested lists, and page through the rest.",
                        node,
                        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "max_cost": max_cost},
                    )
                )

    return QueryCostLimit
