import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Audience(_message.Message):
    __slots__ = ("genders", "age_groups")
    GENDERS_FIELD_NUMBER: _ClassVar[int]
    AGE_GROUPS_FIELD_NUMBER: _ClassVar[int]
    genders: _containers.RepeatedScalarFieldContainer[str]
    age_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, genders: _Optional[_Iterable[str]] = ..., age_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class ColorInfo(_message.Message):
    __slots__ = ("color_families", "colors")
    COLOR_FAMILIES_FIELD_NUMBER: _ClassVar[int]
    COLORS_FIELD_NUMBER: _ClassVar[int]
    color_families: _containers.RepeatedScalarFieldContainer[str]
    colors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, color_families: _Optional[_Iterable[str]] = ..., colors: _Optional[_Iterable[str]] = ...) -> None: ...

class CustomAttribute(_message.Message):
    __slots__ = ("text", "numbers", "searchable", "indexable")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    SEARCHABLE_FIELD_NUMBER: _ClassVar[int]
    INDEXABLE_FIELD_NUMBER: _ClassVar[int]
    text: _containers.RepeatedScalarFieldContainer[str]
    numbers: _containers.RepeatedScalarFieldContainer[float]
    searchable: bool
    indexable: bool
    def __init__(self, text: _Optional[_Iterable[str]] = ..., numbers: _Optional[_Iterable[float]] = ..., searchable: _Optional[bool] = ..., indexable: _Optional[bool] = ...) -> None: ...

class FulfillmentInfo(_message.Message):
    __slots__ = ("type", "place_ids")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PLACE_IDS_FIELD_NUMBER: _ClassVar[int]
    type: str
    place_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[str] = ..., place_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("uri", "height", "width")
    URI_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    uri: str
    height: int
    width: int
    def __init__(self, uri: _Optional[str] = ..., height: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("minimum", "exclusive_minimum", "maximum", "exclusive_maximum")
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIVE_MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    minimum: float
    exclusive_minimum: float
    maximum: float
    exclusive_maximum: float
    def __init__(self, minimum: _Optional[float] = ..., exclusive_minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., exclusive_maximum: _Optional[float] = ...) -> None: ...

class PriceInfo(_message.Message):
    __slots__ = ("currency_code", "price", "original_price", "cost", "price_effective_time", "price_expire_time", "price_range")
    class PriceRange(_message.Message):
        __slots__ = ("price", "original_price")
        PRICE_FIELD_NUMBER: _ClassVar[int]
        ORIGINAL_PRICE_FIELD_NUMBER: _ClassVar[int]
        price: Interval
        original_price: Interval
        def __init__(self, price: _Optional[_Union[Interval, _Mapping]] = ..., original_price: _Optional[_Union[Interval, _Mapping]] = ...) -> None: ...
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    PRICE_EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    PRICE_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    PRICE_RANGE_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    price: float
    original_price: float
    cost: float
    price_effective_time: _timestamp_pb2.Timestamp
    price_expire_time: _timestamp_pb2.Timestamp
    price_range: PriceInfo.PriceRange
    def __init__(self, currency_code: _Optional[str] = ..., price: _Optional[float] = ..., original_price: _Optional[float] = ..., cost: _Optional[float] = ..., price_effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., price_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., price_range: _Optional[_Union[PriceInfo.PriceRange, _Mapping]] = ...) -> None: ...

class Rating(_message.Message):
    __slots__ = ("rating_count", "average_rating", "rating_histogram")
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RATING_FIELD_NUMBER: _ClassVar[int]
    RATING_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    rating_count: int
    average_rating: float
    rating_histogram: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rating_count: _Optional[int] = ..., average_rating: _Optional[float] = ..., rating_histogram: _Optional[_Iterable[int]] = ...) -> None: ...

class UserInfo(_message.Message):
    __slots__ = ("user_id", "ip_address", "user_agent", "direct_user_request")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    DIRECT_USER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    ip_address: str
    user_agent: str
    direct_user_request: bool
    def __init__(self, user_id: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., direct_user_request: _Optional[bool] = ...) -> None: ...

class LocalInventory(_message.Message):
    __slots__ = ("place_id", "price_info", "attributes", "fulfillment_types")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: CustomAttribute
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[CustomAttribute, _Mapping]] = ...) -> None: ...
    PLACE_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_INFO_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    FULFILLMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    place_id: str
    price_info: PriceInfo
    attributes: _containers.MessageMap[str, CustomAttribute]
    fulfillment_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, place_id: _Optional[str] = ..., price_info: _Optional[_Union[PriceInfo, _Mapping]] = ..., attributes: _Optional[_Mapping[str, CustomAttribute]] = ..., fulfillment_types: _Optional[_Iterable[str]] = ...) -> None: ...
