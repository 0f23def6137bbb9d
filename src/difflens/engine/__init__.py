"""difflens.engine"""
