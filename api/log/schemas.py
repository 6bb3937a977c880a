"""Request and answer bodies of the log endpoints."""

from marshmallow import Schema, fields, validate


class EntryPageQuery(Schema):
    start = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1))


class CheckpointPageQuery(Schema):
    start = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": "smallest tree size"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1))


class StoredCheckpointSchema(Schema):
    size = fields.Integer(required=True)
    note = fields.String(required=True, metadata={"description": "the signed checkpoint, exactly as served"})


class CheckpointPageSchema(Schema):
    checkpoints = fields.List(fields.Nested(StoredCheckpointSchema), required=True)
    next = fields.Integer(allow_none=True, required=True)


class InclusionQuery(Schema):
    seq = fields.Integer(required=True, validate=validate.Range(min=0))
    size = fields.Integer(validate=validate.Range(min=1),
                          metadata={"description": "tree size; default: the latest checkpoint's"})


class ConsistencyQuery(Schema):
    first = fields.Integer(required=True, validate=validate.Range(min=1))
    second = fields.Integer(validate=validate.Range(min=1),
                            metadata={"description": "tree size; default: the latest checkpoint's"})


class LogEntrySchema(Schema):
    seq = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={"description": "base64 SHA-256(0x00 ‖ JCS(entry))"})
    entry = fields.Dict(required=True, metadata={"description": "the entry exactly as hashed"})


class EntryPageSchema(Schema):
    entries = fields.List(fields.Nested(LogEntrySchema), required=True)
    next = fields.Integer(allow_none=True, required=True,
                          metadata={"description": "the start of the next page, or null at the end"})


class InclusionProofSchema(Schema):
    seq = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    hashes = fields.List(fields.String(), required=True)


class ConsistencyProofSchema(Schema):
    first = fields.Integer(required=True)
    second = fields.Integer(required=True)
    hashes = fields.List(fields.String(), required=True)


class KeyPeriodSchema(Schema):
    key = fields.String(required=True, metadata={"description": "verifier key string"})
    from_seq = fields.Integer(required=True, metadata={"description": "first seq the key was valid for"})
    until_seq = fields.Integer(allow_none=True, required=True,
                               metadata={"description": "first seq it was no longer valid for, or null"})


class LogKeysSchema(Schema):
    log = fields.String(required=True, metadata={"description": "the newest log verifier key"})
    previous = fields.List(fields.String(), required=True,
                           metadata={"description": "every other log key, active or retired"})
    log_history = fields.List(fields.Nested(KeyPeriodSchema), required=True)
    principals = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(KeyPeriodSchema)),
                             required=True)
