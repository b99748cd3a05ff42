"""Locust load scenarios for a lucidserve service: payloads from its model card, users, shapes."""
