"""Argument values settled against the schema and the request."""

from __future__ import annotations

from milliwatt.agent.arguments import (
    grounded,
    mentioned,
    offered_parameters,
    request_numbers,
    settle_arguments,
)
from milliwatt.models.base import ToolSpec

RIDE = ToolSpec(
    "uber.ride",
    "Find a ride",
    {
        "type": "object",
        "properties": {
            "loc": {"type": "string"},
            "type": {"type": "string", "enum": ["plus", "comfort", "black"]},
            "wait": {"type": "integer"},
            "seats": {"type": "integer", "default": 1},
            "shared": {"type": "boolean"},
            "stops": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["loc"],
    },
)


def test_numbers_are_read_with_number_words() -> None:
    assert request_numbers("wait two hundred seconds, then 1,500 more and 2.5") == {
        200.0,
        1500.0,
        2.5,
    }


def test_optional_parameters_are_offered_only_when_the_request_names_them() -> None:
    offered = offered_parameters("a comfort ride from Main Street, I can wait a bit", RIDE)
    # "comfort" is an allowed value of type; "wait" names its parameter
    assert list(offered.parameters["properties"]) == ["loc", "type", "wait"]
    assert offered.parameters["required"] == ["loc"]
    assert mentioned("share the car", "shared", {}) is False  # a different word
    assert mentioned("a shared car", "shared", {}) is True


def test_values_the_request_does_not_hold_are_left_out() -> None:
    request = "Get me a ride from 5th Ave with stops at Main St and Oak Rd, wait ten minutes"
    written = {
        "loc": "Fifth Avenue",  # required: the model's value is kept
        "wait": 10.0,  # said in words; integral, so an integer
        "seats": 1,  # the default: the function does this anyway
        "type": "black",  # neither said nor named
        "shared": False,  # a flag whose parameter the user did not name
        "stops": ["Main St", "Oak Rd"],
    }
    assert settle_arguments(request, RIDE, written) == {
        "loc": "Fifth Avenue",
        "wait": 10,
        "stops": ["Main St", "Oak Rd"],
    }
    assert isinstance(settle_arguments(request, RIDE, written)["wait"], int)


def test_a_named_choice_is_kept() -> None:
    request = "a shared ride of type plus from the station"
    written = {"loc": "station", "type": "plus", "shared": True}
    assert settle_arguments(request, RIDE, written) == written


def test_grounding_compares_letters_and_digits_only() -> None:
    assert grounded("Book Sushi-Ran in Sausalito", "sushi ran")
    assert not grounded("Book Sushi Ran", "Nobu")
    assert grounded("between 3 and 4.5", [3, 4.5])
    assert not grounded("between 3 and 4", [3, 5])
    assert not grounded("anything", [])


def test_dates_are_written_as_the_schema_asks() -> None:
    event = ToolSpec(
        "history.event",
        "",
        {
            "type": "object",
            "properties": {
                "date": {"type": "string", "description": "Date in YYYY-MM-DD."},
                "when": {"type": "string", "format": "date"},
                "label": {"type": "string"},
            },
            "required": ["date", "label"],
        },
    )
    request = "What happened on March 17, 1915, and on 4 July 1776? Label it March 17."
    written = {"date": "March 17, 1915", "when": "4 July 1776", "label": "March 17"}
    assert settle_arguments(request, event, written) == {
        "date": "1915-03-17",
        "when": "1776-07-04",  # optional: kept because the request holds it
        "label": "March 17",  # no date format asked: left as written
    }
    assert settle_arguments(request, event, {"date": "soon", "label": "x"})["date"] == "soon"


def test_spare_numbers_bring_optional_numeric_parameters() -> None:
    table = ToolSpec(
        "Restaurants_2_ReserveRestaurant",
        "Make a table reservation",
        {
            "type": "object",
            "properties": {
                "restaurant_name": {"type": "string"},
                "number_of_seats": {"type": "integer"},
                "price_band": {"type": "integer", "enum": [1, 2, 3]},
            },
            "required": ["restaurant_name"],
        },
    )
    offered = offered_parameters("Book Sushi Ran for 4 people", table)
    assert list(offered.parameters["properties"]) == ["restaurant_name", "number_of_seats"]
    offered = offered_parameters("Book Sushi Ran", table)
    assert list(offered.parameters["properties"]) == ["restaurant_name"]
    # every number is taken by a required parameter: nothing spare
    add = ToolSpec(
        "add_one",
        "",
        {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "precision": {"type": "integer"}},
            "required": ["n"],
        },
    )
    assert list(offered_parameters("add one to 41", add).parameters["properties"]) == ["n"]
