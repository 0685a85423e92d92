"""The devhost dashboard: static pages at /dashboard plus a few devhost-only routes under /devhost/api."""
