import datetime

from footfall.retail.v2 import user_event_pb2 as _user_event_pb2
from footfall.talent.v4 import event_pb2 as _event_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import error_details_pb2 as _error_details_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Transport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_UNSPECIFIED: _ClassVar[Transport]
    GRPC: _ClassVar[Transport]
    REST: _ClassVar[Transport]
    PIXEL: _ClassVar[Transport]
    IMPORT: _ClassVar[Transport]

class DataSetView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_SET_VIEW_UNSPECIFIED: _ClassVar[DataSetView]
    DATA_SET_VIEW_BASIC: _ClassVar[DataSetView]
    DATA_SET_VIEW_FULL: _ClassVar[DataSetView]
TRANSPORT_UNSPECIFIED: Transport
GRPC: Transport
REST: Transport
PIXEL: Transport
IMPORT: Transport
DATA_SET_VIEW_UNSPECIFIED: DataSetView
DATA_SET_VIEW_BASIC: DataSetView
DATA_SET_VIEW_FULL: DataSetView

class StoredUserEvent(_message.Message):
    __slots__ = ("id", "catalog", "user_event", "received_event", "joined", "receive_time", "transport")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    USER_EVENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_EVENT_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    id: int
    catalog: str
    user_event: _user_event_pb2.UserEvent
    received_event: _user_event_pb2.UserEvent
    joined: bool
    receive_time: _timestamp_pb2.Timestamp
    transport: Transport
    def __init__(self, id: _Optional[int] = ..., catalog: _Optional[str] = ..., user_event: _Optional[_Union[_user_event_pb2.UserEvent, _Mapping]] = ..., received_event: _Optional[_Union[_user_event_pb2.UserEvent, _Mapping]] = ..., joined: _Optional[bool] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transport: _Optional[_Union[Transport, str]] = ...) -> None: ...

class UserEventBatch(_message.Message):
    __slots__ = ("user_events",)
    USER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    user_events: _containers.RepeatedCompositeFieldContainer[StoredUserEvent]
    def __init__(self, user_events: _Optional[_Iterable[_Union[StoredUserEvent, _Mapping]]] = ...) -> None: ...

class StoredClientEvent(_message.Message):
    __slots__ = ("id", "tenant", "client_event", "receive_time", "transport", "job_event_profile")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_EVENT_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    JOB_EVENT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    id: int
    tenant: str
    client_event: _event_pb2.ClientEvent
    receive_time: _timestamp_pb2.Timestamp
    transport: Transport
    job_event_profile: str
    def __init__(self, id: _Optional[int] = ..., tenant: _Optional[str] = ..., client_event: _Optional[_Union[_event_pb2.ClientEvent, _Mapping]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transport: _Optional[_Union[Transport, str]] = ..., job_event_profile: _Optional[str] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("id", "time", "transport", "method", "parent", "key_name", "code", "message", "field_violations", "request_json", "request_truncated", "operation", "repeats", "last_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    LAST_TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    time: _timestamp_pb2.Timestamp
    transport: Transport
    method: str
    parent: str
    key_name: str
    code: int
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[_error_details_pb2.BadRequest.FieldViolation]
    request_json: str
    request_truncated: bool
    operation: str
    repeats: int
    last_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transport: _Optional[_Union[Transport, str]] = ..., method: _Optional[str] = ..., parent: _Optional[str] = ..., key_name: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[_error_details_pb2.BadRequest.FieldViolation, _Mapping]]] = ..., request_json: _Optional[str] = ..., request_truncated: _Optional[bool] = ..., operation: _Optional[str] = ..., repeats: _Optional[int] = ..., last_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DataSet(_message.Message):
    __slots__ = ("name", "event_count", "last_event_time", "last_receive_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_count: int
    last_event_time: _timestamp_pb2.Timestamp
    last_receive_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., event_count: _Optional[int] = ..., last_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUserEventsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListUserEventsResponse(_message.Message):
    __slots__ = ("user_events", "next_page_token")
    USER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_events: _containers.RepeatedCompositeFieldContainer[StoredUserEvent]
    next_page_token: str
    def __init__(self, user_events: _Optional[_Iterable[_Union[StoredUserEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountUserEventsRequest(_message.Message):
    __slots__ = ("parent", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class CountUserEventsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListClientEventsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListClientEventsResponse(_message.Message):
    __slots__ = ("client_events", "next_page_token")
    CLIENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    client_events: _containers.RepeatedCompositeFieldContainer[StoredClientEvent]
    next_page_token: str
    def __init__(self, client_events: _Optional[_Iterable[_Union[StoredClientEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountClientEventsRequest(_message.Message):
    __slots__ = ("parent", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class CountClientEventsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListRejectionsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRejectionsResponse(_message.Message):
    __slots__ = ("rejections", "next_page_token")
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    next_page_token: str
    def __init__(self, rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListCatalogsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "view")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    view: DataSetView
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., view: _Optional[_Union[DataSetView, str]] = ...) -> None: ...

class ListCatalogsResponse(_message.Message):
    __slots__ = ("catalogs", "tenants", "next_page_token")
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedCompositeFieldContainer[DataSet]
    tenants: _containers.RepeatedCompositeFieldContainer[DataSet]
    next_page_token: str
    def __init__(self, catalogs: _Optional[_Iterable[_Union[DataSet, _Mapping]]] = ..., tenants: _Optional[_Iterable[_Union[DataSet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCallerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Caller(_message.Message):
    __slots__ = ("keys_checked", "projects", "role", "key_name")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROLE_UNSPECIFIED: _ClassVar[Caller.Role]
        WRITER: _ClassVar[Caller.Role]
        READER: _ClassVar[Caller.Role]
        ADMIN: _ClassVar[Caller.Role]
    ROLE_UNSPECIFIED: Caller.Role
    WRITER: Caller.Role
    READER: Caller.Role
    ADMIN: Caller.Role
    KEYS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    keys_checked: bool
    projects: _containers.RepeatedScalarFieldContainer[str]
    role: Caller.Role
    key_name: str
    def __init__(self, keys_checked: _Optional[bool] = ..., projects: _Optional[_Iterable[str]] = ..., role: _Optional[_Union[Caller.Role, str]] = ..., key_name: _Optional[str] = ...) -> None: ...

class ResetCatalogRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResetTenantRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResetProjectRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("deleted_events_count", "deleted_products_count", "deleted_rejections_count", "deleted_operations_count", "cancelled_operations_count")
    DELETED_EVENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_PRODUCTS_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_REJECTIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELETED_OPERATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_OPERATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_events_count: int
    deleted_products_count: int
    deleted_rejections_count: int
    deleted_operations_count: int
    cancelled_operations_count: int
    def __init__(self, deleted_events_count: _Optional[int] = ..., deleted_products_count: _Optional[int] = ..., deleted_rejections_count: _Optional[int] = ..., deleted_operations_count: _Optional[int] = ..., cancelled_operations_count: _Optional[int] = ...) -> None: ...

class WatchUserEventsRequest(_message.Message):
    __slots__ = ("parent", "filter", "after_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: str
    after_id: int
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[str] = ..., after_id: _Optional[int] = ...) -> None: ...

class WatchClientEventsRequest(_message.Message):
    __slots__ = ("parent", "after_id", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    after_id: int
    filter: str
    def __init__(self, parent: _Optional[str] = ..., after_id: _Optional[int] = ..., filter: _Optional[str] = ...) -> None: ...

class WatchRejectionsRequest(_message.Message):
    __slots__ = ("parent", "after_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    after_id: int
    def __init__(self, parent: _Optional[str] = ..., after_id: _Optional[int] = ...) -> None: ...
