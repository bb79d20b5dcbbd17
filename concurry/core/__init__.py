"""The worker API and its runtime: futures, options, proxies, backends protocol, retries, limits, pools."""
