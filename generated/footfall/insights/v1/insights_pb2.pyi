import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CountBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUNT_BY_UNSPECIFIED: _ClassVar[CountBy]
    VISITOR: _ClassVar[CountBy]
    USER: _ClassVar[CountBy]
    SESSION: _ClassVar[CountBy]
    REQUEST: _ClassVar[CountBy]
    JOB: _ClassVar[CountBy]

class Breakdown(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKDOWN_UNSPECIFIED: _ClassVar[Breakdown]
    BY_DAY: _ClassVar[Breakdown]
    BY_ITEM: _ClassVar[Breakdown]

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    HOUR: _ClassVar[Granularity]
    DAY: _ClassVar[Granularity]
COUNT_BY_UNSPECIFIED: CountBy
VISITOR: CountBy
USER: CountBy
SESSION: CountBy
REQUEST: CountBy
JOB: CountBy
BREAKDOWN_UNSPECIFIED: Breakdown
BY_DAY: Breakdown
BY_ITEM: Breakdown
GRANULARITY_UNSPECIFIED: Granularity
HOUR: Granularity
DAY: Granularity

class FunnelStep(_message.Message):
    __slots__ = ("event_type", "product_id", "category", "search_query_present", "attribute_key", "attribute_value", "job")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SEARCH_QUERY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_VALUE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    product_id: str
    category: str
    search_query_present: bool
    attribute_key: str
    attribute_value: str
    job: str
    def __init__(self, event_type: _Optional[str] = ..., product_id: _Optional[str] = ..., category: _Optional[str] = ..., search_query_present: _Optional[bool] = ..., attribute_key: _Optional[str] = ..., attribute_value: _Optional[str] = ..., job: _Optional[str] = ...) -> None: ...

class RunFunnelRequest(_message.Message):
    __slots__ = ("parent", "steps", "count_by", "conversion_window", "start_time", "end_time", "breakdown")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    COUNT_BY_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_WINDOW_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    count_by: CountBy
    conversion_window: _duration_pb2.Duration
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    breakdown: Breakdown
    def __init__(self, parent: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., count_by: _Optional[_Union[CountBy, str]] = ..., conversion_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., breakdown: _Optional[_Union[Breakdown, str]] = ...) -> None: ...

class FunnelStepResult(_message.Message):
    __slots__ = ("step", "entrants", "conversion_from_previous", "conversion_from_first", "median_time_from_previous")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ENTRANTS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_FIRST_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_TIME_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    step: FunnelStep
    entrants: int
    conversion_from_previous: float
    conversion_from_first: float
    median_time_from_previous: _duration_pb2.Duration
    def __init__(self, step: _Optional[_Union[FunnelStep, _Mapping]] = ..., entrants: _Optional[int] = ..., conversion_from_previous: _Optional[float] = ..., conversion_from_first: _Optional[float] = ..., median_time_from_previous: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FunnelGroup(_message.Message):
    __slots__ = ("key", "steps")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    key: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    def __init__(self, key: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ...) -> None: ...

class RunFunnelResponse(_message.Message):
    __slots__ = ("steps", "groups", "events_read", "notes")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_READ_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    groups: _containers.RepeatedCompositeFieldContainer[FunnelGroup]
    events_read: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[FunnelGroup, _Mapping]]] = ..., events_read: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class CurrencyAmount(_message.Message):
    __slots__ = ("currency_code", "amount")
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    amount: float
    def __init__(self, currency_code: _Optional[str] = ..., amount: _Optional[float] = ...) -> None: ...

class ProductStats(_message.Message):
    __slots__ = ("product_id", "views", "add_to_carts", "purchases", "units", "revenue", "view_to_purchase_rate")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    ADD_TO_CARTS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    VIEW_TO_PURCHASE_RATE_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    views: int
    add_to_carts: int
    purchases: int
    units: int
    revenue: _containers.RepeatedCompositeFieldContainer[CurrencyAmount]
    view_to_purchase_rate: float
    def __init__(self, product_id: _Optional[str] = ..., views: _Optional[int] = ..., add_to_carts: _Optional[int] = ..., purchases: _Optional[int] = ..., units: _Optional[int] = ..., revenue: _Optional[_Iterable[_Union[CurrencyAmount, _Mapping]]] = ..., view_to_purchase_rate: _Optional[float] = ...) -> None: ...

class ListProductStatsRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "page_size", "page_token", "order_by")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListProductStatsResponse(_message.Message):
    __slots__ = ("products", "next_page_token", "events_read", "notes")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_READ_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[ProductStats]
    next_page_token: str
    events_read: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, products: _Optional[_Iterable[_Union[ProductStats, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., events_read: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class JobStats(_message.Message):
    __slots__ = ("job", "company", "impressions", "views", "application_starts", "application_finishes", "redirects", "bookmarks", "view_rate", "application_start_rate", "application_finish_rate", "notifications", "sent_cvs", "interviews_granted", "hires")
    JOB_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_STARTS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FINISHES_FIELD_NUMBER: _ClassVar[int]
    REDIRECTS_FIELD_NUMBER: _ClassVar[int]
    BOOKMARKS_FIELD_NUMBER: _ClassVar[int]
    VIEW_RATE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_START_RATE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FINISH_RATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    SENT_CVS_FIELD_NUMBER: _ClassVar[int]
    INTERVIEWS_GRANTED_FIELD_NUMBER: _ClassVar[int]
    HIRES_FIELD_NUMBER: _ClassVar[int]
    job: str
    company: str
    impressions: int
    views: int
    application_starts: int
    application_finishes: int
    redirects: int
    bookmarks: int
    view_rate: float
    application_start_rate: float
    application_finish_rate: float
    notifications: int
    sent_cvs: int
    interviews_granted: int
    hires: int
    def __init__(self, job: _Optional[str] = ..., company: _Optional[str] = ..., impressions: _Optional[int] = ..., views: _Optional[int] = ..., application_starts: _Optional[int] = ..., application_finishes: _Optional[int] = ..., redirects: _Optional[int] = ..., bookmarks: _Optional[int] = ..., view_rate: _Optional[float] = ..., application_start_rate: _Optional[float] = ..., application_finish_rate: _Optional[float] = ..., notifications: _Optional[int] = ..., sent_cvs: _Optional[int] = ..., interviews_granted: _Optional[int] = ..., hires: _Optional[int] = ...) -> None: ...

class ListJobStatsRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "page_size", "page_token", "order_by")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    order_by: str
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListJobStatsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "events_read", "notes")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_READ_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobStats]
    next_page_token: str
    events_read: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobStats, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., events_read: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class EventTypeCount(_message.Message):
    __slots__ = ("event_type", "count")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    count: int
    def __init__(self, event_type: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class TimeBucket(_message.Message):
    __slots__ = ("start_time", "event_counts", "distinct_visitors")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_VISITORS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    event_counts: _containers.RepeatedCompositeFieldContainer[EventTypeCount]
    distinct_visitors: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_counts: _Optional[_Iterable[_Union[EventTypeCount, _Mapping]]] = ..., distinct_visitors: _Optional[int] = ...) -> None: ...

class DailyRevenue(_message.Message):
    __slots__ = ("day", "currency_code", "revenue", "purchases")
    DAY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    day: str
    currency_code: str
    revenue: float
    purchases: int
    def __init__(self, day: _Optional[str] = ..., currency_code: _Optional[str] = ..., revenue: _Optional[float] = ..., purchases: _Optional[int] = ...) -> None: ...

class SearchQueryCount(_message.Message):
    __slots__ = ("query", "searches", "led_to_detail_view")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SEARCHES_FIELD_NUMBER: _ClassVar[int]
    LED_TO_DETAIL_VIEW_FIELD_NUMBER: _ClassVar[int]
    query: str
    searches: int
    led_to_detail_view: int
    def __init__(self, query: _Optional[str] = ..., searches: _Optional[int] = ..., led_to_detail_view: _Optional[int] = ...) -> None: ...

class ComputeTotalsRequest(_message.Message):
    __slots__ = ("parent", "start_time", "end_time", "granularity", "top_queries", "search_window")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    TOP_QUERIES_FIELD_NUMBER: _ClassVar[int]
    SEARCH_WINDOW_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    top_queries: int
    search_window: _duration_pb2.Duration
    def __init__(self, parent: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ..., top_queries: _Optional[int] = ..., search_window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ComputeTotalsResponse(_message.Message):
    __slots__ = ("buckets", "revenue", "distinct_visitors", "top_queries", "events_read", "notes")
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_VISITORS_FIELD_NUMBER: _ClassVar[int]
    TOP_QUERIES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_READ_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[TimeBucket]
    revenue: _containers.RepeatedCompositeFieldContainer[DailyRevenue]
    distinct_visitors: int
    top_queries: _containers.RepeatedCompositeFieldContainer[SearchQueryCount]
    events_read: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, buckets: _Optional[_Iterable[_Union[TimeBucket, _Mapping]]] = ..., revenue: _Optional[_Iterable[_Union[DailyRevenue, _Mapping]]] = ..., distinct_visitors: _Optional[int] = ..., top_queries: _Optional[_Iterable[_Union[SearchQueryCount, _Mapping]]] = ..., events_read: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...
