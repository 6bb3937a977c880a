"""Bodies of the command endpoints. The command itself is kept exactly as sent: its signature
covers its RFC 8785 encoding, so it is checked by the contracts, not reshaped here."""

from marshmallow import RAISE, Schema, fields, validate


class CommandEnvelope(Schema):
    class Meta:
        unknown = RAISE

    command = fields.Dict(required=True, metadata={
        "description": '{"id": "<unique per actor>", "actor": "<principal>", "ops": [{"op": "...", ...}]}'})
    signature = fields.String(required=True, metadata={"description": "base64 Ed25519 over JCS(command)"})


class CommandBatch(Schema):
    class Meta:
        unknown = RAISE

    commands = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=1000))


class OutcomeSchema(Schema):
    seq = fields.Integer(required=True)
    leaf_hash = fields.String(required=True)
    entry = fields.Dict(required=True)
    results = fields.List(fields.Dict(), required=True, metadata={"description": "what each op produced"})


class BatchItemSchema(Schema):
    status = fields.Integer(required=True, metadata={"description": "the HTTP status this command alone would get"})
    body = fields.Dict(required=True, metadata={"description": "its outcome, or its problem"})


class BatchSchema(Schema):
    results = fields.List(fields.Nested(BatchItemSchema), required=True)
