"""Deterministic resolvers: each recognises one family of requests and names one tool."""
