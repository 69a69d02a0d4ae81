"""The in-process bus: one backbone from connectors to historian, live view and analytics.

See :class:`Bus` for the contract.
"""

from genba.bus._bus import Bus, BusStats, Item, Overflow, Subscription, SubscriptionStats

__all__ = ["Bus", "BusStats", "Item", "Overflow", "Subscription", "SubscriptionStats"]
